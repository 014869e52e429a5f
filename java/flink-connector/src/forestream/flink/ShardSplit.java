package forestream.flink;

import org.apache.flink.api.connector.source.SourceSplit;

import java.io.Serializable;
import java.util.Objects;

/**
 * One shard of the stream, the unit of work a reader is given; also its checkpointed
 * state. {@code position} says where reading resumes:
 * <ul>
 *   <li>{@code TRIM_HORIZON}: the oldest record kept;</li>
 *   <li>{@code AT_TIMESTAMP:<epoch millis>}: records that arrived at or after that time
 *       (what {@code LATEST} becomes when the job starts, so that a restore before the
 *       first record still reads what arrived since the start);</li>
 *   <li>{@code AFTER:<sequence number>}: after the last record emitted;</li>
 *   <li>{@code FINISHED}: a closed shard read to its end whose end the enumerator may not
 *       have heard of yet (kept in reader state so that the end survives a restore).</li>
 * </ul>
 */
public final class ShardSplit implements SourceSplit, Serializable {
    private static final long serialVersionUID = 1L;
    public static final String TRIM_HORIZON = "TRIM_HORIZON";
    public static final String FINISHED = "FINISHED";
    static final String AT_TIMESTAMP = "AT_TIMESTAMP:";
    static final String AFTER = "AFTER:";

    private final String shardId;
    private final String position;

    public ShardSplit(String shardId, String position) {
        this.shardId = Objects.requireNonNull(shardId);
        this.position = Objects.requireNonNull(position);
    }

    static ShardSplit after(String shardId, String sequenceNumber) {
        return new ShardSplit(shardId, AFTER + sequenceNumber);
    }

    static ShardSplit atTimestamp(String shardId, long epochMillis) {
        return new ShardSplit(shardId, AT_TIMESTAMP + epochMillis);
    }

    @Override
    public String splitId() {
        return shardId;
    }

    public String shardId() {
        return shardId;
    }

    public String position() {
        return position;
    }

    boolean isFinished() {
        return FINISHED.equals(position);
    }

    @Override
    public String toString() {
        return shardId + "@" + position;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof ShardSplit && ((ShardSplit) other).shardId.equals(shardId)
                && ((ShardSplit) other).position.equals(position);
    }

    @Override
    public int hashCode() {
        return Objects.hash(shardId, position);
    }
}
