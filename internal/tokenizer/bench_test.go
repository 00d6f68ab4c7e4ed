package tokenizer

import (
	"strings"
	"testing"
)

var benchSink []byte

// BenchmarkEncode tokenizes benchmark-like text (llama.cpp's test cases, joined) with real vocabularies and
// reports tokens/s and MB/s; the ByteCopy line is the same text only copied, as a reference in the same run.
func BenchmarkEncode(b *testing.B) {
	var parts []string
	for _, c := range readCases(b, "gpt-2") {
		parts = append(parts, c.text)
	}
	text := strings.Repeat(strings.Join(parts, " "), 4)
	b.Run("ByteCopy", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for i := 0; i < b.N; i++ {
			benchSink = append(benchSink[:0], text...)
		}
	})
	for _, n := range []string{"llama-spm", "gpt-2", "starcoder", "deepseek-llm"} {
		tok := loadVocab(b, n)
		b.Run(n, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			count := 0
			for i := 0; i < b.N; i++ {
				ids, err := tok.Encode(text)
				if err != nil {
					b.Fatal(err)
				}
				count += len(ids)
			}
			b.ReportMetric(float64(count)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
