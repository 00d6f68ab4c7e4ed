package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/evomerge/evomerge/internal/hf/hftest"
	"github.com/evomerge/evomerge/internal/store/s3test"
)

// hfFolder writes a tiny HF folder under dir/name; edit changes its config.json.
func hfFolder(t *testing.T, dir, name string, o hftest.Options, edit func(map[string]any)) string {
	t.Helper()
	d := filepath.Join(dir, name)
	require.NoError(t, hftest.Write(d, o))
	if edit != nil {
		require.NoError(t, hftest.EditConfig(d, edit))
	}
	return d
}

func gemma(c map[string]any)      { c["architectures"] = []string{"GemmaForCausalLM"} }
func wrongShape(c map[string]any) { c["intermediate_size"] = 64 }

// Local folders (as paths and file:// URLs): an architecture the engine lacks and tensors that do not
// match config.json are refused before anything starts, naming the field, the model and the key.
func TestStartRefusesUnsupportedOrMismatchedHFFolder(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "pairs.jsonl": pairs})
	good := hfFolder(t, dir, "good", hftest.Default(), nil)
	bad := hfFolder(t, dir, "gemma", hftest.Default(), gemma)
	shape := hfFolder(t, dir, "shape", hftest.Default(), wrongShape)
	_, open := fileStore(t)

	_, err := uploadData(context.Background(), open, realConfig(t, dir, good, "file://"+bad))
	require.ErrorContains(t, err, "init.models[1] file://"+bad+": ")
	require.ErrorContains(t, err, `architectures = ["GemmaForCausalLM"]`)

	_, err = uploadData(context.Background(), open, realConfig(t, dir, shape, good))
	require.ErrorContains(t, err, "init.models[0] "+shape+": ")
	require.ErrorContains(t, err, "mlp.gate_proj.weight has shape [48 32], but config.json implies [64 32]")

	// The good folder with itself passes, and the data is uploaded.
	got, err := uploadData(context.Background(), open, realConfig(t, dir, good, "file://"+good))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(got.Mutation.Datasets[0].Path, "store:"))

	// A GGUF whose architecture the engine lacks.
	fake := filepath.Join(dir, "fake.gguf")
	ggufWithArch(t, tinyGGUF(t, dir, 3), fake, "gemma")
	_, err = uploadData(context.Background(), open, realConfig(t, dir, good, fake))
	require.ErrorContains(t, err, "init.models[1] "+fake+": ")
	require.ErrorContains(t, err, `general.architecture = "gemma"`)
}

// ggufWithArch rewrites a GGUF file's general.architecture (the <arch>.* keys keep their llama names,
// which is what a model of another architecture looks like to a llama reader).
func ggufWithArch(t *testing.T, src, dst, arch string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	// general.architecture is a string KV: u64 length then bytes; "llama" becomes arch of the same length.
	require.Len(t, arch, len("llama"))
	i := strings.Index(string(b), "general.architecture")
	require.GreaterOrEqual(t, i, 0)
	j := i + len("general.architecture") + 4 + 8 // type u32, length u64
	require.Equal(t, "llama", string(b[j:j+5]))
	copy(b[j:], arch)
	require.NoError(t, os.WriteFile(dst, b, 0o644))
}

// A chat dataset needs every population model to carry a chat template (or the config to give one): an
// HF folder without one is refused naming the model and the dataset; with one the records render.
func TestStartRefusesChatDatasetForHFFolderWithoutTemplate(t *testing.T) {
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "chat.jsonl": chats})
	withTpl := hfFolder(t, dir, "chatty", hftest.Default(), nil)
	o := hftest.Default()
	o.NoChatTemplate = true
	without := hfFolder(t, dir, "plain", o, nil)
	_, open := fileStore(t)
	cfg := realConfig(t, dir, withTpl, without)
	cfg.Mutation.Datasets[0].Path = filepath.Join(dir, "chat.jsonl")
	_, err := uploadData(context.Background(), open, cfg)
	require.ErrorContains(t, err, "mutation.datasets[0].path: "+filepath.Join(dir, "chat.jsonl")+" is a chat dataset")
	require.ErrorContains(t, err, "init.models[1] "+without+" has no chat template")

	cfg.Init.Models = []string{withTpl, "file://" + withTpl}
	_, err = uploadData(context.Background(), open, cfg)
	require.NoError(t, err)
}

// The same checks for models under s3:// (a real S3 server): HF folders by prefix, read from their
// config, tokenizer files and safetensors headers; GGUF files by their header.
func TestStartChecksS3Models(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	dir := dataDir(t, map[string]string{"arc-dev.jsonl": arcDev, "arc-test.jsonl": arcTest, "chat.jsonl": chats})
	o := hftest.Default()
	o.NoChatTemplate = true
	o.Shards = 2
	for name, d := range map[string]string{
		"good":  hfFolder(t, dir, "good", hftest.Default(), nil),
		"gemma": hfFolder(t, dir, "gemma", hftest.Default(), gemma),
		"shape": hfFolder(t, dir, "shape", o, wrongShape),
		"plain": hfFolder(t, dir, "plain", o, nil),
		"nocfg": t.TempDir(),
	} {
		require.NoError(t, srv.PutDir(ctx, "models/"+name+"/", d))
	}
	require.NoError(t, srv.PutDir(ctx, "gguf/", filepath.Dir(tinyGGUF(t, t.TempDir(), 1))))
	_, open := fileStore(t)
	url := func(name string) string { return srv.URL("models/" + name + "/") }
	cfg := realConfig(t, dir, url("good"), url("plain"))
	cfg.Mutation.Datasets[0].Path = filepath.Join(dir, "chat.jsonl")

	_, err := uploadData(ctx, open, cfg)
	require.ErrorContains(t, err, "init.models[1] "+url("plain")+" has no chat template (no chat_template in s3://evomerge/models/plain/tokenizer_config.json")

	cfg.Init.Models = []string{url("good"), srv.URL("gguf/m1.gguf")}
	_, err = uploadData(ctx, open, cfg)
	require.ErrorContains(t, err, "init.models[1] "+srv.URL("gguf/m1.gguf")+" has no chat template (tokenizer.chat_template)")

	cfg.Init.Models = []string{url("good"), url("gemma"), url("shape"), url("nocfg")}
	_, err = uploadData(ctx, open, cfg)
	require.ErrorContains(t, err, "init.models[1] "+url("gemma")+": ")
	require.ErrorContains(t, err, `architectures = ["GemmaForCausalLM"]`)
	require.ErrorContains(t, err, "init.models[2] "+url("shape")+": hf: model s3://evomerge/models/shape: s3://evomerge/models/shape/model-0000")
	require.ErrorContains(t, err, "but config.json implies [64 32]")
	require.ErrorContains(t, err, "init.models[3] "+url("nocfg")+": config.json is missing")

	cfg.Init.Models = []string{url("good"), url("good")}
	got, err := uploadData(ctx, open, cfg)
	require.NoError(t, err)
	require.Equal(t, url("good"), got.Init.Models[0])
}
