//go:build amd64 && !purego

#include "textflag.h"

// func scanPlain(d []byte, i int) (j int, f StringFlags)
//
// Registers: SI data, BX length, DI the next chunk, DX its stops (quotes,
// backslashes, control characters) and R8 its high bits as bit masks, R10
// the high bits of the bytes passed, R11 the flags, X1-X3 the bytes '"',
// '\\' and 0x1f in every lane, R12 the escapes table.
//
// The escapes of a chunk are taken from its stop mask, without loading the
// chunk again after each one: the next stop's position then depends on a
// bit scan of the mask, not on a load and compare per escape.
TEXT ·scanPlain(SB), NOSPLIT, $0-41
	MOVQ d_base+0(FP), SI
	MOVQ d_len+8(FP), BX
	MOVQ i+24(FP), DI
	XORL R11, R11
	XORL R10, R10
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X2
	PUNPCKLQDQ X2, X2
	MOVQ $0x1f1f1f1f1f1f1f1f, AX
	MOVQ AX, X3
	PUNPCKLQDQ X3, X3
	LEAQ ·escapes(SB), R12

chunk:
	LEAQ 16(DI), AX
	CMPQ AX, BX
	JA   done
	MOVOU (SI)(DI*1), X0
	MOVO X0, X6
	PCMPEQB X1, X6 // quotes
	MOVO X0, X7
	PCMPEQB X2, X7 // backslashes
	POR  X7, X6
	MOVO X0, X8
	PMINUB X3, X8
	PCMPEQB X0, X8 // bytes <= 0x1f
	POR  X8, X6
	PMOVMSKB X6, DX
	PMOVMSKB X0, R8
	TESTL DX, DX
	JNZ  stop
	ORL  R8, R10
	MOVQ AX, DI
	JMP  chunk

stop:
	BSFL DX, CX           // k, the first stop left in the chunk
	LEAQ (DI)(CX*1), AX   // its position
	MOVBLZX (SI)(AX*1), R9
	CMPB R9B, $0x5c
	JNE  end              // a quote or a control character
	LEAQ 1(AX), R9
	CMPQ R9, BX
	JAE  end
	MOVBLZX (SI)(R9*1), R9
	MOVBLZX (R12)(R9*1), R9
	CMPB R9B, $1          // escSimple
	JNE  end              // \/, \u or an invalid escape
	ORL  $1, R11          // StrEscaped
	MOVL $3, R9
	SHLL CX, R9
	NOTL R9
	ANDL R9, DX           // the backslash and the escaped byte are passed
	JNZ  stop
	// Nothing but content in the chunk: go on after it, or after the
	// escaped byte when it is the next chunk's first.
	ORL  R8, R10
	ADDQ $2, AX
	LEAQ 16(DI), R9
	CMPQ AX, R9
	CMOVQLT R9, AX
	MOVQ AX, DI
	JMP  chunk

end:
	// Stop at AX, k = CX bytes into the chunk.
	MOVL $1, R9
	SHLL CX, R9
	DECL R9
	ANDL R9, R8
	ORL  R8, R10
	MOVQ AX, DI

done:
	TESTL R10, R10
	JZ   ret
	ORL  $2, R11          // StrNonASCII

ret:
	MOVQ DI, j+32(FP)
	MOVB R11, f+40(FP)
	RET
