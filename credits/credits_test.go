package credits

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Amount
	}{
		{"10", 10 * Dollar}, {"10.00", 10 * Dollar}, {"$5", 5 * Dollar}, {"10.5", 10*Dollar + 50*Cent},
		{"0.000001", 1}, {".25", 25 * Cent}, {" 7.123456 ", 7_123_456}, {"0", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAmount(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, bad := range []string{"", ".", "5.", "-5", "+5", "1e3", "0.0000001", "abc", "1,000", "1234567890123", "$", "5.5.5"} {
		t.Run("bad/"+bad, func(t *testing.T) {
			_, err := ParseAmount(bad)
			require.Error(t, err)
		})
	}
}

func TestAmountString(t *testing.T) {
	for a, want := range map[Amount]string{0: "0.00", 1: "0.000001", 10 * Dollar: "10.00", 1_234_500: "1.2345", -150 * Cent: "-1.50"} {
		require.Equal(t, want, a.String())
		if a >= 0 {
			back, err := ParseAmount(want)
			require.NoError(t, err)
			require.Equal(t, a, back)
		}
	}
}

func TestErrors(t *testing.T) {
	err := error(&InsufficientError{Account: "acme", Available: 2 * Dollar, Min: 3 * Dollar})
	require.ErrorIs(t, err, ErrInsufficientCredits)
	require.Contains(t, err.Error(), "$2.00 available")
	require.ErrorIs(t, ValidatePurchase(Purchase{ID: "p", Account: "a", Amount: MinPurchase - 1}), ErrPurchaseBelowMinimum)
	require.NoError(t, ValidatePurchase(Purchase{ID: "p", Account: "a", Amount: MinPurchase}))
	var ve *ValidationError
	require.True(t, errors.As(ValidateReservation(Reservation{ID: "h", Account: "a", Min: 2, Max: 1, TTL: time.Minute}), &ve))
	require.Equal(t, "max", ve.Field)
	require.ErrorIs(t, ValidateID("account", "has space"), ErrInvalid)
	require.ErrorIs(t, ValidateGroupBy([]Group{GroupDay, GroupDay}), ErrInvalid)
}

func TestCursor(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 4000, time.UTC)
	ts, id, err := DecodeCursor(EncodeCursor(at, "tx_1|x"))
	require.NoError(t, err)
	require.Equal(t, at, ts)
	require.Equal(t, "tx_1|x", id)
	for _, bad := range []string{"!!", "bm9waXBl", ""} {
		_, _, err := DecodeCursor(bad)
		require.ErrorIs(t, err, ErrInvalid, bad)
	}
}
