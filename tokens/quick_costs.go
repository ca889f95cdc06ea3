package tokens

// The quick estimator's calibration, fitted on testdata/corpus by
//
//	go test ./tokens -run TestQuickCalibration -calibrate
var (
	cl100kCosts = quickCosts{
		word:      [16]uint16{256, 256, 259, 261, 267, 271, 287, 325, 366, 366, 392, 460, 493, 527, 560, 593},
		upper:     [16]uint16{256, 275, 275, 275, 275, 275, 324, 373, 423, 472, 521, 571, 620, 669, 719, 768},
		hump:      [16]uint16{205, 205, 205, 205, 205, 205, 253, 302, 351, 399, 448, 497, 545, 594, 643, 691},
		wordLong:  33,
		prefix:    94,
		foreign:   537,
		wordExt:   [16]uint16{442, 442, 442, 442, 442, 442, 479, 515, 551, 587, 624, 660, 696, 733, 769, 805},
		wordAlt:   [16]uint16{264, 336, 557, 557, 717, 929, 929, 964, 1168, 1371, 1575, 1779, 1982, 2186, 2389, 2593},
		altLong:   204,
		digits:    280,
		punct:     [4]uint16{256, 273, 276, 282},
		punctLong: 78,
		spaces:    256,
		lines:     209,
		breaks:    1,
		han:       323,
		kana:      244,
		hangul:    346,
		symbol:    277,
		blob:      168,
		emoji:     717,
		other:     256,
	}
	o200kCosts = quickCosts{
		word:      [16]uint16{256, 257, 259, 260, 263, 265, 282, 314, 318, 328, 361, 412, 437, 462, 488, 513},
		upper:     [16]uint16{256, 268, 268, 268, 268, 268, 310, 353, 396, 438, 481, 523, 566, 609, 651, 694},
		hump:      [16]uint16{262, 262, 262, 262, 262, 262, 298, 333, 369, 405, 440, 476, 512, 547, 583, 618},
		wordLong:  25,
		prefix:    94,
		foreign:   169,
		wordExt:   [16]uint16{310, 310, 310, 310, 310, 310, 345, 379, 414, 448, 483, 517, 552, 587, 621, 656},
		wordAlt:   [16]uint16{256, 256, 330, 330, 393, 446, 446, 500, 586, 671, 756, 841, 927, 1012, 1097, 1182},
		altLong:   85,
		digits:    280,
		punct:     [4]uint16{256, 266, 278, 307},
		punctLong: 84,
		spaces:    256,
		lines:     209,
		breaks:    1,
		han:       194,
		kana:      182,
		hangul:    196,
		symbol:    254,
		blob:      164,
		emoji:     512,
		other:     256,
	}
)
