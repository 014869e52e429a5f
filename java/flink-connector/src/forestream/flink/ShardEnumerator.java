package forestream.flink;

import org.apache.flink.api.connector.source.SourceEvent;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Hands the stream's shards to readers and follows resharding.
 *
 * <p>Every {@code discoveryIntervalMillis} it lists the shards (ListShards). A shard is
 * handed out once each of its parents is finished (closed and read to its end by a reader,
 * which says so with a {@link ShardsFinishedEvent}) or no longer listed (expired): so the
 * records of one partition key are read in order across a split or a merge. A shard goes
 * to reader {@code floorMod(hash(shardId), parallelism)}, once that reader has registered.
 *
 * <p>At the job's first start, {@code LATEST} turns every open shard into
 * {@code AT_TIMESTAMP:<now>} and marks closed shards finished; shards that appear later
 * (children of a reshard) are read from {@code TRIM_HORIZON}, all of them being new.
 */
final class ShardEnumerator implements SplitEnumerator<ShardSplit, EnumeratorState> {
    private final SplitEnumeratorContext<ShardSplit> context;
    private final KinesisApiClient.Settings settings;
    private final String streamName;
    private final String startingPosition;
    private final long discoveryIntervalMillis;
    private final Set<String> assigned;
    private final Set<String> finished;
    private final Map<String, String> pending;
    private boolean initialized;
    private transient KinesisApiClient client;

    ShardEnumerator(SplitEnumeratorContext<ShardSplit> context,
                    KinesisApiClient.Settings settings, String streamName,
                    String startingPosition, long discoveryIntervalMillis,
                    EnumeratorState restored) {
        this.context = context;
        this.settings = settings;
        this.streamName = streamName;
        this.startingPosition = startingPosition;
        this.discoveryIntervalMillis = discoveryIntervalMillis;
        EnumeratorState state = restored != null ? restored
                : new EnumeratorState(Set.of(), Set.of(), Map.of(), false);
        this.assigned = new TreeSet<>(state.assigned);
        this.finished = new TreeSet<>(state.finished);
        this.pending = new LinkedHashMap<>(state.pending);
        this.initialized = state.initialized;
    }

    @Override
    public void start() {
        client = new KinesisApiClient(settings);
        context.callAsync(this::listShards, this::onShards, 0, discoveryIntervalMillis);
    }

    @Override
    public void handleSplitRequest(int subtaskId, String requesterHostname) {
        // splits are pushed as shards appear; readers never ask
    }

    @Override
    public void addSplitsBack(List<ShardSplit> splits, int subtaskId) {
        for (ShardSplit split : splits) {
            assigned.remove(split.shardId());
            if (split.isFinished()) {
                finished.add(split.shardId());
            } else {
                pending.put(split.shardId(), split.position());
            }
        }
        assignPending();
    }

    @Override
    public void addReader(int subtaskId) {
        assignPending();
    }

    @Override
    public void handleSourceEvent(int subtaskId, SourceEvent event) {
        if (event instanceof ShardsFinishedEvent) {
            for (String shardId : ((ShardsFinishedEvent) event).shardIds) {
                assigned.remove(shardId);
                pending.remove(shardId);
                finished.add(shardId);
            }
            // children become eligible at the next listing; do not wait for it
            context.callAsync(this::listShards, this::onShards);
        }
    }

    @Override
    public EnumeratorState snapshotState(long checkpointId) {
        return new EnumeratorState(assigned, finished, pending, initialized);
    }

    @Override
    public void close() {
        if (client != null) {
            client.close();
        }
    }

    /** The stream's shards, on the coordinator's worker thread (blocking I/O is fine). */
    private List<JsonNode> listShards() throws IOException, InterruptedException {
        List<JsonNode> shards = new ArrayList<>();
        String next = null;
        do {
            ObjectNode body = KinesisApiClient.body();
            if (next == null) {
                body.put("StreamName", streamName);
            } else {
                body.put("NextToken", next);
            }
            JsonNode page = client.call("ListShards", body);
            page.path("Shards").forEach(shards::add);
            next = page.hasNonNull("NextToken") ? page.get("NextToken").asText() : null;
        } while (next != null);
        return shards;
    }

    private void onShards(List<JsonNode> shards, Throwable error) {
        if (error != null) {
            throw new IllegalStateException("listing the shards of stream '" + streamName
                    + "' at " + settings.endpointUrl + " failed", error);
        }
        Map<String, JsonNode> byId = new HashMap<>();
        for (JsonNode shard : shards) {
            byId.put(shard.get("ShardId").asText(), shard);
        }
        boolean first = !initialized;
        long now = System.currentTimeMillis();
        for (JsonNode shard : shards) {
            String id = shard.get("ShardId").asText();
            if (assigned.contains(id) || finished.contains(id) || pending.containsKey(id)) {
                continue;
            }
            boolean closed = shard.path("SequenceNumberRange").has("EndingSequenceNumber");
            if (first && "LATEST".equals(startingPosition)) {
                if (closed) {
                    finished.add(id);
                } else {
                    pending.put(id, ShardSplit.AT_TIMESTAMP + now);
                }
            } else if (parentsDone(shard, byId)) {
                pending.put(id, ShardSplit.TRIM_HORIZON);
            }
        }
        // shards past retention are gone from the listing: forget them
        finished.retainAll(byId.keySet());
        initialized = true;
        assignPending();
    }

    private boolean parentsDone(JsonNode shard, Map<String, JsonNode> listed) {
        for (String field : new String[] {"ParentShardId", "AdjacentParentShardId"}) {
            String parent = shard.hasNonNull(field) ? shard.get(field).asText() : null;
            if (parent != null && listed.containsKey(parent) && !finished.contains(parent)) {
                return false;
            }
        }
        return true;
    }

    private void assignPending() {
        int parallelism = context.currentParallelism();
        Set<Integer> readers = context.registeredReaders().keySet();
        Iterator<Map.Entry<String, String>> entries = pending.entrySet().iterator();
        while (entries.hasNext()) {
            Map.Entry<String, String> entry = entries.next();
            int owner = Math.floorMod(entry.getKey().hashCode(), parallelism);
            if (readers.contains(owner)) {
                context.assignSplit(new ShardSplit(entry.getKey(), entry.getValue()), owner);
                assigned.add(entry.getKey());
                entries.remove();
            }
        }
    }
}
