package forestream.flink;

import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.groups.SinkWriterMetricGroup;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The writer of {@link KinesisApiSink}: fills a PutRecords batch on the task thread while
 * the previous one is sent on a thread of its own (one batch in flight, so records leave
 * in the order written), and waits for both in {@link #flush}, which Flink calls before
 * every checkpoint barrier and at the end of input. A batch leaves when it is full or
 * {@code maxBufferMillis} after its first record, whichever comes first (a processing-time
 * timer on the task thread), so a quiet stream's output does not wait for a checkpoint.
 */
final class KinesisApiSinkWriter implements SinkWriter<String> {
    static final int MAX_RECORDS = 500;
    static final long MAX_BYTES = 5L * 1024 * 1024;
    static final int MAX_DATA_BYTES = 1024 * 1024;
    static final int MAX_ATTEMPTS = 10;

    private final KinesisApiClient client;
    private final String streamName;
    private final Counter recordsSent;
    private final Counter bytesSent;
    private final ExecutorService sender;
    private final ProcessingTimeService timers;
    private final long maxBufferMillis;
    private boolean timerSet;
    private List<ObjectNode> batch = new ArrayList<>();
    private long batchBytes;
    private Future<?> inFlight;

    KinesisApiSinkWriter(KinesisApiClient.Settings settings, String streamName,
                         SinkWriterMetricGroup metrics, ProcessingTimeService timers,
                         long maxBufferMillis) {
        this.timers = timers;
        this.maxBufferMillis = maxBufferMillis;
        this.client = new KinesisApiClient(settings);
        this.streamName = streamName;
        this.recordsSent = metrics.getNumRecordsSendCounter();
        this.bytesSent = metrics.getNumBytesSendCounter();
        this.sender = Executors.newSingleThreadExecutor(runnable -> {
            Thread thread = new Thread(runnable, "kinesis-sink-" + streamName);
            thread.setDaemon(true);
            return thread;
        });
    }

    @Override
    public void write(String element, Context context) throws IOException,
            InterruptedException {
        ObjectNode entry = entry(element);
        long size = entry.get("Data").asText().length() * 3L / 4
                + entry.get("PartitionKey").asText().length();
        if (batch.size() >= MAX_RECORDS || batchBytes + size > MAX_BYTES) {
            sendBatch();
        }
        batch.add(entry);
        batchBytes += size;
        if (!timerSet) {
            timerSet = true;
            timers.registerTimer(timers.getCurrentProcessingTime() + maxBufferMillis,
                    time -> {
                        timerSet = false;
                        sendBatch();
                    });
        }
    }

    @Override
    public void flush(boolean endOfInput) throws IOException, InterruptedException {
        sendBatch();
        awaitInFlight();
    }

    @Override
    public void close() throws Exception {
        sender.shutdownNow();
        client.close();
    }

    /** Hand the batch being filled to the sender, after the one in flight is through. */
    private void sendBatch() throws IOException, InterruptedException {
        awaitInFlight();
        if (batch.isEmpty()) {
            return;
        }
        List<ObjectNode> records = batch;
        batch = new ArrayList<>();
        batchBytes = 0;
        inFlight = sender.submit(() -> {
            put(records);
            return null;
        });
    }

    private void awaitInFlight() throws IOException, InterruptedException {
        if (inFlight == null) {
            return;
        }
        try {
            inFlight.get();
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof IOException ? (IOException) cause
                    : new IOException("writing to " + streamName + " failed", cause);
        } finally {
            inFlight = null;
        }
    }

    /** PutRecords until every entry is stored; failed entries are sent again. */
    private void put(List<ObjectNode> records) throws IOException, InterruptedException {
        long delay = 100;
        for (int attempt = 1; ; attempt++) {
            ObjectNode body = KinesisApiClient.body();
            body.put("StreamName", streamName);
            ArrayNode entries = body.putArray("Records");
            records.forEach(entries::add);
            JsonNode answer = client.call("PutRecords", body);
            List<ObjectNode> failed = new ArrayList<>();
            JsonNode results = answer.path("Records");
            String firstError = null;
            for (int i = 0; i < records.size(); i++) {
                JsonNode result = results.path(i);
                if (result.hasNonNull("ErrorCode")) {
                    failed.add(records.get(i));
                    if (firstError == null) {
                        firstError = result.get("ErrorCode").asText() + ": "
                                + result.path("ErrorMessage").asText();
                    }
                }
            }
            int stored = records.size() - failed.size();
            recordsSent.inc(stored);
            if (failed.isEmpty()) {
                for (ObjectNode record : records) {
                    bytesSent.inc(record.get("Data").asText().length() * 3L / 4);
                }
                return;
            }
            if (attempt >= MAX_ATTEMPTS) {
                throw new IOException(failed.size() + " record(s) could not be written to "
                        + streamName + " after " + MAX_ATTEMPTS + " attempts; first error: "
                        + firstError);
            }
            records = failed;
            Thread.sleep(delay);
            delay = Math.min(delay * 2, 2000);
        }
    }

    /** One PutRecords entry from one element, or a clear refusal of the element. */
    static ObjectNode entry(String element) {
        JsonNode node;
        try {
            node = element == null ? null : KinesisApiClient.JSON.readTree(element);
        } catch (IOException e) {
            throw refuse(element, "it is not JSON (" + e.getMessage().split("\n")[0] + ")");
        }
        if (node == null || !node.isObject()) {
            throw refuse(element, "it must be a JSON object with \"data\" and "
                    + "\"partitionKey\"");
        }
        if (!node.has("data")) {
            throw refuse(element, "\"data\" is missing");
        }
        JsonNode key = node.get("partitionKey");
        if (key == null || !key.isTextual() || key.asText().isEmpty()
                || key.asText().length() > 256) {
            throw refuse(element, "\"partitionKey\" must be a string of 1 to 256 characters");
        }
        JsonNode data = node.get("data");
        JsonNode id = node.get("id");
        // opaque bytes ({"b64": ...}) have no place for an id: they are written as they are
        if (id != null && !id.isNull() && data.isObject() && !RecordJson.isBytes(data)
                && !data.has("_record_id")) {
            ((ObjectNode) data).set("_record_id", id);
        }
        byte[] bytes;
        try {
            bytes = RecordJson.dataBytes(data);
        } catch (IllegalArgumentException | IOException e) {
            throw refuse(element, e.getMessage());
        }
        if (bytes.length > MAX_DATA_BYTES) {
            throw refuse(element, "its data is " + bytes.length + " bytes; a record holds at "
                    + "most " + MAX_DATA_BYTES);
        }
        ObjectNode entry = KinesisApiClient.body();
        entry.put("Data", Base64.getEncoder().encodeToString(bytes));
        entry.put("PartitionKey", key.asText());
        JsonNode hashKey = node.get("explicitHashKey");
        if (hashKey != null && !hashKey.isNull()) {
            String text = hashKey.asText();
            if (!text.matches("0|[1-9][0-9]{0,38}")
                    || new BigInteger(text).bitLength() > 128) {
                throw refuse(element, "\"explicitHashKey\" must be a decimal number from 0 to "
                        + "2^128-1, got '" + text + "'");
            }
            entry.put("ExplicitHashKey", text);
        }
        return entry;
    }

    private static IllegalArgumentException refuse(String element, String why) {
        String shown = element == null ? "null" : element.length() > 200
                ? element.substring(0, 200) + "..." : element;
        return new IllegalArgumentException("KinesisApiSink cannot write element " + shown
                + ": " + why);
    }
}
