// Package portable says which x86 SIMD features the C and C++ code of this build were compiled for. ggml's
// CPU kernels and the merge kernels pick their vector paths at compile time (-march), and wider vectors sum
// in another order, so bytes match only between builds made for the same instruction set. The portable build
// (make build PORTABLE=1: -march=x86-64-v3) fixes that set; its test checks a golden hash of a short
// fine-tune and merge.
package portable

/*
static int c_feature(int i) {
	switch (i) {
#ifdef __AVX2__
	case 0: return 1;
#endif
#ifdef __FMA__
	case 1: return 1;
#endif
#ifdef __F16C__
	case 2: return 1;
#endif
#ifdef __BMI2__
	case 3: return 1;
#endif
#ifdef __AVX512F__
	case 4: return 1;
#endif
#ifdef __AVXVNNI__
	case 5: return 1;
#endif
#ifdef __AVX512BF16__
	case 6: return 1;
#endif
#ifdef __AMX_TILE__
	case 7: return 1;
#endif
	}
	return 0;
}
int cxx_feature(int i);
*/
import "C"

// features are the compile-time macros probed, in the order of the C switch: the first four make up
// x86-64-v3's vector set, the rest go beyond it (found under -march=native on newer CPUs).
var features = []string{"avx2", "fma", "f16c", "bmi2", "avx512f", "avxvnni", "avx512bf16", "amx-tile"}

const v3Count = 4

// Features lists the probed SIMD features the C (lang "c") or C++ (lang "c++") compiler was allowed.
func Features(lang string) []string {
	var out []string
	for i, f := range features {
		on := C.c_feature(C.int(i)) != 0
		if lang == "c++" {
			on = C.cxx_feature(C.int(i)) != 0
		}
		if on {
			out = append(out, f)
		}
	}
	return out
}

// IsX8664V3 reports whether both C and C++ were compiled for exactly x86-64-v3's vector set: all of it,
// nothing beyond.
func IsX8664V3() bool {
	for _, lang := range []string{"c", "c++"} {
		got := Features(lang)
		if len(got) != v3Count {
			return false
		}
		for i := range v3Count {
			if got[i] != features[i] {
				return false
			}
		}
	}
	return true
}
