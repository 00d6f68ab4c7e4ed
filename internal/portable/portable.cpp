// The same probe as portable.go's, compiled as C++ (ggml's CPU backend is partly C++, built with CGO_CXXFLAGS).
extern "C" int cxx_feature(int i) {
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
