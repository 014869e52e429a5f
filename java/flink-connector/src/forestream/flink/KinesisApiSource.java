package forestream.flink;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * Reads a stream through the Kinesis Data Streams API (a forestream server, or Kinesis):
 * a FLIP-27 source, one split per shard, the split's state the last sequence number read.
 *
 * <p><b>What it emits</b>: one {@code String} per record, a JSON object
 * <pre>{"data": D, "partitionKey": "...", "sequenceNumber": "...", "shardId": "...",
 *  "arrivalMillis": 1733480000123}</pre>
 * where {@code D} is the record's data itself when its bytes are exactly one JSON value in
 * UTF-8 (object, array, string, number, true/false/null; the text is passed through
 * unchanged, so Python parses the envelope once), and {@code {"b64": "<base64 of the
 * bytes>"}} otherwise (not UTF-8, not JSON, empty, or JSON followed by more text).
 * {@code arrivalMillis} is the server's ApproximateArrivalTimestamp in epoch milliseconds;
 * it is also the record's Flink timestamp, so a {@code WatermarkStrategy} without a
 * timestamp assigner uses arrival time as event time.
 *
 * <p><b>Positions</b>: {@code startingPosition} is {@code TRIM_HORIZON} (every record
 * kept) or {@code LATEST} (records arriving after the job's first start). Checkpoints and
 * savepoints keep, per shard, the sequence number of the last record emitted; a restore
 * continues right after it, so with Flink's exactly-once checkpoints each record reaches
 * the job's state exactly once.
 *
 * <p><b>Resharding</b>: shards are listed every {@code discoveryIntervalMillis} (default
 * 1000); a child shard is read only after its parents are read to their end (see
 * {@link ShardEnumerator}), so a reader keeps a partition key's records in order; with
 * several readers, a parent's last records may still be in flight in another subtask when
 * the child's first ones are read.
 *
 * <p><b>Authentication</b>: see {@link KinesisApiClient} (Signature V4 with credentials from
 * the environment, placeholders for a forestream server without credentials; the access
 * token, when not null or empty, is sent as {@code X-Forestream-Token}).
 *
 * <p>From PyFlink:
 * <pre>
 * jvm = get_gateway().jvm
 * source = Source(jvm.forestream.flink.KinesisApiSource(url, "events", "TRIM_HORIZON", token))
 * env.from_source(source, WatermarkStrategy.no_watermarks(), "events", Types.STRING())
 * </pre>
 */
public final class KinesisApiSource implements Source<String, ShardSplit, EnumeratorState>,
        ResultTypeQueryable<String> {
    private static final long serialVersionUID = 1L;

    private final KinesisApiClient.Settings settings;
    private final String streamName;
    private final String startingPosition;
    private int pageSize = 1000;
    private long idleMillis = 200;
    private long discoveryIntervalMillis = 1000;

    public KinesisApiSource(String endpointUrl, String streamName, String startingPosition,
                            String accessToken) {
        this(KinesisApiClient.Settings.fromEnvironment(endpointUrl, accessToken), streamName,
                startingPosition);
    }

    /** With explicit credentials and region (null for each: from the environment). */
    public KinesisApiSource(String endpointUrl, String streamName, String startingPosition,
                            String accessToken, String accessKeyId, String secretAccessKey,
                            String region) {
        this(new KinesisApiClient.Settings(endpointUrl, accessToken, accessKeyId,
                secretAccessKey, region), streamName, startingPosition);
    }

    private KinesisApiSource(KinesisApiClient.Settings settings, String streamName,
                             String startingPosition) {
        if (streamName == null || streamName.isEmpty() || streamName.length() > 128) {
            throw new IllegalArgumentException("streamName must be 1 to 128 characters, got '"
                    + streamName + "'");
        }
        String position = startingPosition == null ? "" : startingPosition.toUpperCase();
        if (!position.equals("TRIM_HORIZON") && !position.equals("LATEST")) {
            throw new IllegalArgumentException("startingPosition must be TRIM_HORIZON or "
                    + "LATEST, got '" + startingPosition + "'");
        }
        this.settings = settings;
        this.streamName = streamName;
        this.startingPosition = position;
    }

    /** Records asked per GetRecords call, 1 to 10000 (default 1000). */
    public KinesisApiSource withPageSize(int records) {
        if (records < 1 || records > 10000) {
            throw new IllegalArgumentException("page size must be 1 to 10000, got " + records);
        }
        this.pageSize = records;
        return this;
    }

    /** How long a shard that had nothing new waits before it is asked again, 10 to 60000
     * milliseconds (default 200). */
    public KinesisApiSource withIdleMillis(long millis) {
        if (millis < 10 || millis > 60000) {
            throw new IllegalArgumentException("idle wait must be 10 to 60000 ms, got "
                    + millis);
        }
        this.idleMillis = millis;
        return this;
    }

    /** How often shards are listed to find new ones, 100 to 3600000 ms (default 1000). */
    public KinesisApiSource withDiscoveryIntervalMillis(long millis) {
        if (millis < 100 || millis > 3600000) {
            throw new IllegalArgumentException("discovery interval must be 100 to 3600000 ms,"
                    + " got " + millis);
        }
        this.discoveryIntervalMillis = millis;
        return this;
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public SourceReader<String, ShardSplit> createReader(SourceReaderContext context) {
        return new ShardSourceReader(settings, streamName, pageSize, idleMillis, context);
    }

    @Override
    public SplitEnumerator<ShardSplit, EnumeratorState> createEnumerator(
            SplitEnumeratorContext<ShardSplit> context) {
        return new ShardEnumerator(context, settings, streamName, startingPosition,
                discoveryIntervalMillis, null);
    }

    @Override
    public SplitEnumerator<ShardSplit, EnumeratorState> restoreEnumerator(
            SplitEnumeratorContext<ShardSplit> context, EnumeratorState state) {
        return new ShardEnumerator(context, settings, streamName, startingPosition,
                discoveryIntervalMillis, state);
    }

    @Override
    public SimpleVersionedSerializer<ShardSplit> getSplitSerializer() {
        return ShardSplitSerializer.INSTANCE;
    }

    @Override
    public SimpleVersionedSerializer<EnumeratorState> getEnumeratorCheckpointSerializer() {
        return new EnumeratorState.Serializer();
    }

    @Override
    public TypeInformation<String> getProducedType() {
        return Types.STRING;
    }
}
