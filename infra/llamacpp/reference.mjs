// Runs real llama.cpp (the CPU build that npm's node-llama-cpp ships) on the models and token ids a manifest
// names, and writes what it computed: the full next-token logits at every prompt position and a greedy
// continuation; and, optionally, the tokenization of given texts by given vocabularies. The Go side
// (infra/llamacpp/main.go) writes the manifest and compares.
//
//   node reference.mjs manifest.json out.json
//
// Like-for-like settings: F32 KV cache, no flash attention, ids fed exactly (no BOS added).
import { readFileSync, writeFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const [manifestPath, outPath] = process.argv.slice(2);
if (!manifestPath || !outPath) {
    console.error("usage: node reference.mjs manifest.json out.json");
    process.exit(2);
}
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
const llama = await getLlama({ gpu: false, build: "never", maxThreads: manifest.threads ?? 1, logLevel: "error" });
const release = llama.llamaCppRelease;
const out = { llama_cpp: `${release.repo}@${release.release} (node-llama-cpp, CPU)`, models: [] };

function denseLogits(map, vocab) {
    const row = new Array(vocab).fill(null);
    for (const [id, v] of map) row[id] = v;
    if (row.some((v) => v === null)) throw new Error("llama.cpp returned logits for part of the vocabulary");
    return row;
}

async function newSequence(model, contextSize) {
    const context = await model.createContext({
        contextSize, batchSize: contextSize, sequences: 1, threads: manifest.threads ?? 1,
        flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
    });
    return { context, sequence: context.getSequence() };
}

for (const m of manifest.models) {
    const model = await llama.loadModel({ modelPath: m.path, gpuLayers: 0 });
    const contextSize = m.context;

    // Logits at every position of the prompt, in one batch.
    let { context, sequence } = await newSequence(model, contextSize);
    const items = manifest.prompt.map((id) => [id, { generateNext: { logits: true } }]);
    const res = await sequence.controlledEvaluate(items);
    const logits = res.map((r) => denseLogits(r.next.logits, m.vocab));
    await context.dispose();

    // Greedy continuation through llama.cpp's KV cache: the prompt head in one batch, then one token a step.
    ({ context, sequence } = await newSequence(model, contextSize));
    const head = manifest.prompt.slice(0, manifest.greedy_prompt);
    const evalItems = head.map((id, i) => (i === head.length - 1 ? [id, { generateNext: { logits: true } }] : id));
    let r = await sequence.controlledEvaluate(evalItems);
    const greedy = [];
    for (;;) {
        const next = r[r.length - 1].next.logits.entries().next().value[0];
        greedy.push(next);
        if (greedy.length === manifest.greedy_new) break;
        r = await sequence.controlledEvaluate([[next, { generateNext: { logits: true } }]]);
    }
    await context.dispose();
    await model.dispose();
    out.models.push({ name: m.name, logits, greedy });
    console.error(`llama.cpp: ${m.name} done`);
}
// Tokenization of given texts by vocabularies (for the tokenizer's comparison): text only, control-token
// text stays text; BOS is reported, not added.
out.tokenize = [];
for (const tk of manifest.tokenize ?? []) {
    const model = await llama.loadModel({ modelPath: tk.vocab, vocabOnly: true });
    const tokens = tk.texts.map((text) => Array.from(model.tokenize(text, false)));
    out.tokenize.push({ name: tk.name, bos: model.tokens.bos ?? null, add_bos: model.tokens.shouldPrependBosToken, tokens });
    await model.dispose();
    console.error(`llama.cpp: tokenized ${tk.texts.length} texts with ${tk.name}`);
}
writeFileSync(outPath, JSON.stringify(out));
await llama.dispose();
