// The AWS SDK for JavaScript v3 against forestream server, with the SDK's defaults (its
// Kinesis client speaks HTTP/2 only: h2c on http://, h2 by ALPN on https://).
//
//   node kinesis.mjs ENDPOINT STREAM [ACCESS_KEY SECRET]
//
// Prints one JSON line with what each call returned; exits non-zero on any failure.
// For https:// endpoints, NODE_EXTRA_CA_CERTS names the server's certificate.
import {
  KinesisClient, CreateStreamCommand, PutRecordCommand, PutRecordsCommand,
  ListShardsCommand, GetShardIteratorCommand, GetRecordsCommand,
  RegisterStreamConsumerCommand, DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand, SubscribeToShardCommand, waitUntilStreamExists,
} from "@aws-sdk/client-kinesis";

const [endpoint, stream, accessKeyId = "local", secretAccessKey = "local"] =
  process.argv.slice(2);
const LIVE = 30;  // records put after the subscription started
const client = new KinesisClient({
  endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey },
});
const out = {};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (data) => Buffer.from(data).toString();

await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
const waited = await waitUntilStreamExists(
  { client, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { StreamName: stream });
out.waiter = waited.state;

const put = await client.send(new PutRecordCommand({
  StreamName: stream, PartitionKey: "k", Data: Buffer.from("first") }));
out.putRecordShard = put.ShardId;
const batch = await client.send(new PutRecordsCommand({
  StreamName: stream,
  Records: ["second", "third"].map((d) => ({ PartitionKey: "k", Data: Buffer.from(d) })),
}));
out.putRecordsFailed = batch.FailedRecordCount;

const shards = await client.send(new ListShardsCommand({ StreamName: stream }));
out.shards = shards.Shards.map((s) => s.ShardId);
const shardId = out.shards[0];
const iterator = await client.send(new GetShardIteratorCommand({
  StreamName: stream, ShardId: shardId, ShardIteratorType: "TRIM_HORIZON" }));
const records = await client.send(new GetRecordsCommand({
  ShardIterator: iterator.ShardIterator }));
out.getRecords = records.Records.map((r) => text(r.Data));

const summary = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
const registered = await client.send(new RegisterStreamConsumerCommand({
  StreamARN: summary.StreamDescriptionSummary.StreamARN, ConsumerName: "js" }));
const consumerARN = registered.Consumer.ConsumerARN;
for (let i = 0; ; i++) {
  const described = await client.send(new DescribeStreamConsumerCommand({
    ConsumerARN: consumerARN }));
  if (described.ConsumerDescription.ConsumerStatus === "ACTIVE") break;
  if (i > 100) throw new Error("consumer never became ACTIVE");
  await sleep(100);
}

// SubscribeToShard from LATEST: every record must arrive after the subscription began.
const cancel = new AbortController();
const subscription = await client.send(new SubscribeToShardCommand({
  ConsumerARN: consumerARN, ShardId: shardId, StartingPosition: { Type: "LATEST" } }),
  { abortSignal: cancel.signal });
const producer = (async () => {
  for (let i = 0; i < LIVE; i += 10) {
    await sleep(150);
    const answer = await client.send(new PutRecordsCommand({
      StreamName: stream,
      Records: Array.from({ length: 10 }, (_, j) => ({
        PartitionKey: `p${i + j}`, Data: Buffer.from(`live-${i + j}`) })),
    }));
    if (answer.FailedRecordCount) throw new Error("a live put failed");
  }
})();
const live = [];
let events = 0;
const deadline = setTimeout(() => {
  console.error(JSON.stringify({ ...out, live, events, error: "timed out" }));
  process.exit(3);
}, 30000);
for await (const event of subscription.EventStream) {
  if (event.SubscribeToShardEvent) {
    events += 1;
    live.push(...event.SubscribeToShardEvent.Records.map((r) => text(r.Data)));
    if (live.length >= LIVE) break;
  }
}
clearTimeout(deadline);
cancel.abort();  // the subscription would go on for 5 minutes
await producer;
out.events = events;
out.live = live;
client.destroy();
console.log(JSON.stringify(out));
