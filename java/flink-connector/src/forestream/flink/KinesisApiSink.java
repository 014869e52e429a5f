package forestream.flink;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;

/**
 * Writes to a stream through the Kinesis Data Streams API with PutRecords.
 *
 * <p><b>What it takes</b>: one {@code String} per record, a JSON object
 * <pre>{"data": D, "partitionKey": "...", "explicitHashKey": "...", "id": "..."}</pre>
 * {@code D} is any JSON value, written as its compact JSON text in UTF-8, except
 * {@code {"b64": "<base64>"}}, which writes those bytes (the source's form for data that is
 * not JSON). {@code partitionKey} (1 to 256 characters) is required;
 * {@code explicitHashKey} (a decimal 128-bit number) is optional. {@code id}, when given
 * and {@code D} is an object, is added to it as {@code "_record_id"} (as forestream's own
 * Kinesis sink does), unless the object has one already or is the {@code b64} form (opaque
 * bytes have no place for it: they are written unchanged).
 *
 * <p><b>Delivery: at-least-once.</b> Records are sent in PutRecords batches of at most
 * 500 records and 5 MiB, or {@code maxBufferMillis} (default 200) after a batch's first
 * record, one batch in flight while the next fills; entries PutRecords
 * reports as failed are sent again with backoff. Before a checkpoint completes, everything
 * written before its barrier has been acknowledged by the server ({@code flush}), so a
 * restore never loses output; records written after the last completed checkpoint are
 * written again after a failure. Kinesis has no transactions (a two-phase commit would
 * need them), so a reader that must see each output once drops repeats by
 * {@code _record_id}: give each output an id that a replay reproduces (e.g. the input's
 * shard and sequence number, or key and count).
 *
 * <p>An element that is not such an object fails the job with a message naming the
 * element and the rule it breaks (Flink then restarts it from the last checkpoint).
 *
 * <p>From PyFlink:
 * <pre>
 * sink = Sink(get_gateway().jvm.forestream.flink.KinesisApiSink(url, "counts", token))
 * stream.map(to_json, Types.STRING()).sink_to(sink)
 * </pre>
 */
public final class KinesisApiSink implements Sink<String> {
    private static final long serialVersionUID = 1L;

    private final KinesisApiClient.Settings settings;
    private final String streamName;
    private long maxBufferMillis = 200;

    public KinesisApiSink(String endpointUrl, String streamName, String accessToken) {
        this(KinesisApiClient.Settings.fromEnvironment(endpointUrl, accessToken), streamName);
    }

    /** With explicit credentials and region (null for each: from the environment). */
    public KinesisApiSink(String endpointUrl, String streamName, String accessToken,
                          String accessKeyId, String secretAccessKey, String region) {
        this(new KinesisApiClient.Settings(endpointUrl, accessToken, accessKeyId,
                secretAccessKey, region), streamName);
    }

    private KinesisApiSink(KinesisApiClient.Settings settings, String streamName) {
        if (streamName == null || streamName.isEmpty() || streamName.length() > 128) {
            throw new IllegalArgumentException("streamName must be 1 to 128 characters, got '"
                    + streamName + "'");
        }
        this.settings = settings;
        this.streamName = streamName;
    }

    /** How long a record may wait for its batch to fill, 1 to 60000 ms (default 200). */
    public KinesisApiSink withMaxBufferMillis(long millis) {
        if (millis < 1 || millis > 60000) {
            throw new IllegalArgumentException("max buffer time must be 1 to 60000 ms, got "
                    + millis);
        }
        this.maxBufferMillis = millis;
        return this;
    }

    @Override
    public SinkWriter<String> createWriter(WriterInitContext context) {
        return new KinesisApiSinkWriter(settings, streamName, context.metricGroup(),
                context.getProcessingTimeService(), maxBufferMillis);
    }
}
