// BullMQ's side of `bench/retention.py --memory-only`: the same job (a ~200-byte payload, the
// catalog's options in BullMQ's names) added, fetched and completed, with MEMORY USAGE of its
// hash at each stage. retention.py installs bullmq (major 5) into a temporary directory, copies
// this file there and runs it: `node bullmq_memory.mjs <redis url>`. Prints one JSON line.
import { readFile } from "node:fs/promises";

import { Queue, Worker } from "bullmq";

const url = new URL(process.argv[2]);
const connection = { host: url.hostname, port: Number(url.port) };
const name = "bench";
const options = {
  attempts: 3,
  backoff: { type: "exponential", delay: 1000 },
  removeOnComplete: { age: 3600, count: 1000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 10000 },
};

const queue = new Queue(name, { connection });
const worker = new Worker(name, null, { connection, autorun: false });
const client = await queue.client;
const usage = (key) => client.call("MEMORY", "USAGE", key, "SAMPLES", "0");

const job = await queue.add(name, { text: "x".repeat(185) }, options);
const key = queue.toKey(job.id);
const waiting = { bytes: await usage(key), fields: await client.hkeys(key) };
const token = "bench-token";
const active = await worker.getNextJob(token);
await active.moveToCompleted({ ok: true }, token, false);
const completed = { bytes: await usage(key), fields: await client.hkeys(key) };

const installed = new URL("./node_modules/bullmq/package.json", import.meta.url);
const { version } = JSON.parse(await readFile(installed, "utf8"));
console.log(JSON.stringify({ version, waiting, completed }));
await worker.close();
await queue.close();
