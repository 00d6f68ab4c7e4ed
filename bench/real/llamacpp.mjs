// The llama.cpp side of bench/real (node-llama-cpp's prebuilt CPU build): runs the workload file the Go side
// wrote, on the same token ids, and prints one JSON line with prompt tok/s, scoring items/s and generation
// tok/s. Like-for-like with the engine: F32 KV cache, no flash attention, ids fed exactly (no BOS added), the
// whole scoring context in one batch.
//
//   node bench-real-llamacpp.mjs workload.json
import { readFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const [inputPath] = process.argv.slice(2);
if (!inputPath) {
    console.error("usage: node bench-real-llamacpp.mjs workload.json");
    process.exit(2);
}
const w = JSON.parse(readFileSync(inputPath, "utf8"));
const t0 = performance.now();
const llama = await getLlama({ gpu: false, build: "never", maxThreads: w.threads, logLevel: "error" });
const model = await llama.loadModel({ modelPath: w.model, gpuLayers: 0 });
const context = await model.createContext({
    contextSize: w.context, batchSize: Math.max(w.prompt.length, w.score_context.length), sequences: 1,
    threads: w.threads, flashAttention: false,
    experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
});
const seq = context.getSequence();
const loadS = (performance.now() - t0) / 1000;
const reps = Math.max(w.reps, 1);

async function timed(f) {
    const t = performance.now();
    for (let i = 0; i < reps; i++) await f();
    return (performance.now() - t) / 1000 / reps;
}
// lastOnly asks for output at the last token only (what llama.cpp computes logits for).
const lastOnly = (ids, out) => ids.map((id, i) => (i === ids.length - 1 ? [id, { generateNext: out }] : id));

// One short warm-up (weights paged in, buffers allocated), as the engine's; then each measurement is the mean
// over the repetitions.
{
    await seq.clearHistory();
    const r = await seq.controlledEvaluate(lastOnly(w.prompt.slice(0, 32), { token: true, options: { temperature: 0 } }));
    let next = r[31].next.token;
    for (let i = 0; i < 2; i++) next = (await seq.controlledEvaluate([[next, { generateNext: { token: true, options: { temperature: 0 } } }]]))[0].next.token;
}

// Prompt processing.
const pp = await timed(async () => {
    await seq.clearHistory();
    await seq.controlledEvaluate(lastOnly(w.prompt, { token: true, options: { temperature: 0 } }));
});

// Scoring: the context once, then each choice after it (its tokens but the last), erased again after. At
// every scored position llama.cpp computes natively what a log-probability needs: the logits of the asked ids,
// the top logit (includeTop: includeMax alone returned no max in 3.22.1) and the sum of exp(logit - max).
const scoreOut = (ids) => ({ logits: { filter: { tokens: ids, includeTop: 1 } }, totalLogitWeight: true });
function logProb(out, t) {
    let maxv = -Infinity;
    for (const v of out.logits.values()) maxv = Math.max(maxv, v);
    return out.logits.get(t) - maxv - Math.log(out.totalLogitWeight);
}
let checksum = 0;
const sc = await timed(async () => {
    checksum = 0; // each repetition computes the same item; keep one item's sum, as the engine's side does
    await seq.clearHistory();
    const c = w.score_context;
    const r = await seq.controlledEvaluate(lastOnly(c, scoreOut(w.score_conts.map((x) => x[0]))));
    const first = r[c.length - 1].next;
    for (const cont of w.score_conts) {
        let lp = logProb(first, cont[0]);
        if (cont.length > 1) {
            const items = cont.slice(0, -1).map((id, j) => [id, { generateNext: scoreOut([cont[j + 1]]) }]);
            const res = await seq.controlledEvaluate(items);
            for (let j = 0; j < items.length; j++) lp += logProb(res[j].next, cont[j + 1]);
            await seq.eraseContextTokenRanges([{ start: c.length, end: c.length + items.length }]);
        }
        checksum += lp;
    }
});

// Generation: the prompt, then gen_new single-token steps with llama.cpp's greedy pick; only the steps are timed.
let gen = 0;
{
    const steps = async () => {
        await seq.clearHistory();
        const r = await seq.controlledEvaluate(lastOnly(w.gen_prompt, { token: true, options: { temperature: 0 } }));
        let next = r[w.gen_prompt.length - 1].next.token;
        const t = performance.now();
        for (let i = 0; i < w.gen_new; i++) {
            const s = await seq.controlledEvaluate([[next, { generateNext: { token: true, options: { temperature: 0 } } }]]);
            next = s[0].next.token;
        }
        return (performance.now() - t) / 1000;
    };
    for (let i = 0; i < reps; i++) gen += await steps();
    gen /= reps;
}
const release = llama.llamaCppRelease;
console.log(JSON.stringify({
    prompt_tok_s: w.prompt.length / pp, score_items_s: 1 / sc, gen_tok_s: w.gen_new / gen, load_s: loadS,
    engine: `${release.repo}@${release.release} (node-llama-cpp, CPU, ${w.threads} threads)`, checksum,
}));
await context.dispose();
await model.dispose();
await llama.dispose();
