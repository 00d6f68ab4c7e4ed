package dataset

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: no dataset file may panic the loader, and every example it
// accepts has something to learn.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"prompt":"a","completion":"b"}` + "\n" + `{"text":"t"}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Yo"}]}`))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	src, err := os.ReadFile(filepath.Join("testdata", "templates", "Qwen-Qwen2-7B-Instruct.jinja"))
	if err != nil {
		f.Fatal(err)
	}
	c, err := NewChatTemplate(string(src), "", "<|im_end|>")
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "d")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ex, err := Load(p, Options{Template: c})
		if err != nil {
			return
		}
		for i, e := range ex {
			if e.Text == "" && e.Completion == "" && len(e.Segments) == 0 {
				t.Fatalf("example %d has nothing to learn: %+v", i, e)
			}
		}
	})
}
