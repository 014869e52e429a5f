package forestream.flink;

import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.source.reader.SingleThreadMultiplexSourceReaderBase;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A source reader: one fetcher thread runs a {@link ShardSplitReader} over all the shards
 * this subtask holds. Shards read to their end are reported to the enumerator and kept in
 * this reader's state as {@code FINISHED} splits (a few bytes each), so that a restore
 * from a checkpoint taken before the enumerator heard of them still lets their children
 * be read. The gauge {@code millisBehindLatest} shows how far the furthest-behind shard
 * of this reader is (GetRecords' MillisBehindLatest).
 */
final class ShardSourceReader
        extends SingleThreadMultiplexSourceReaderBase<ShardRecord, String, ShardSplit,
                ShardSplitState> {
    private final Set<String> finishedShards = new TreeSet<>();

    ShardSourceReader(KinesisApiClient.Settings settings, String streamName, int pageSize,
                      long idleMillis, SourceReaderContext context) {
        this(settings, streamName, pageSize, idleMillis, context, new AtomicLong());
    }

    private ShardSourceReader(KinesisApiClient.Settings settings, String streamName,
                              int pageSize, long idleMillis, SourceReaderContext context,
                              AtomicLong millisBehind) {
        super(() -> new ShardSplitReader(settings, streamName, pageSize, idleMillis,
                        millisBehind),
                new ShardRecordEmitter(), context.getConfiguration(), context);
        context.metricGroup().gauge("millisBehindLatest", millisBehind::get);
    }

    @Override
    public void start() {
        // the enumerator pushes shards; nothing to ask for
    }

    @Override
    public void addSplits(List<ShardSplit> splits) {
        List<ShardSplit> open = new ArrayList<>();
        List<String> ended = new ArrayList<>();
        for (ShardSplit split : splits) {
            if (split.isFinished()) {
                ended.add(split.shardId());
            } else {
                open.add(split);
            }
        }
        if (!ended.isEmpty()) {  // restored: tell the (maybe older) enumerator again
            finishedShards.addAll(ended);
            context.sendSourceEventToCoordinator(new ShardsFinishedEvent(ended));
        }
        if (!open.isEmpty()) {
            super.addSplits(open);
        }
    }

    @Override
    public List<ShardSplit> snapshotState(long checkpointId) {
        List<ShardSplit> state = new ArrayList<>(super.snapshotState(checkpointId));
        for (String shardId : finishedShards) {
            state.add(new ShardSplit(shardId, ShardSplit.FINISHED));
        }
        return state;
    }

    @Override
    protected void onSplitFinished(Map<String, ShardSplitState> finished) {
        finishedShards.addAll(finished.keySet());
        context.sendSourceEventToCoordinator(new ShardsFinishedEvent(
                new ArrayList<>(finished.keySet())));
    }

    @Override
    protected ShardSplitState initializedState(ShardSplit split) {
        return new ShardSplitState(split);
    }

    @Override
    protected ShardSplit toSplitType(String splitId, ShardSplitState state) {
        return state.toSplit();
    }
}
