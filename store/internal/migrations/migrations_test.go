package migrations

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  []int
		ok    bool
	}{
		{"sorted", fstest.MapFS{"m/0002_b.sql": {}, "m/0001_a.sql": {}, "m/README": {}}, []int{1, 2}, true},
		{"gap", fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, nil, false},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": {}, "m/0001_b.sql": {}}, nil, false},
		{"no number", fstest.MapFS{"m/init.sql": {}}, nil, false},
		{"zero", fstest.MapFS{"m/0000_a.sql": {}}, nil, false},
		{"short number", fstest.MapFS{"m/1_a.sql": {}}, nil, false},
		{"none", fstest.MapFS{"m/README": {}}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := Load(tc.files, "m")
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var got []int
			for _, m := range ms {
				got = append(got, m.Version)
			}
			require.Equal(t, tc.want, got)
			require.Equal(t, "0001_a", ms[0].Name)
		})
	}
}
