package forestream.flink;

import org.apache.flink.connector.base.source.reader.RecordsBySplits;
import org.apache.flink.connector.base.source.reader.RecordsWithSplitIds;
import org.apache.flink.connector.base.source.reader.splitreader.SplitReader;
import org.apache.flink.connector.base.source.reader.splitreader.SplitsAddition;
import org.apache.flink.connector.base.source.reader.splitreader.SplitsChange;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Reads the shards given to one reader with GetRecords, on the reader's fetcher thread.
 *
 * <p>Each {@link #fetch()} asks every shard that is due for one page (up to
 * {@code pageSize} records): a shard that answered a full page or is behind is asked again
 * at once, one that answered nothing waits {@code idleMillis}. Records leave as
 * {@link ShardRecord}s whose JSON envelope is built here, off the task thread. A shard
 * whose GetRecords has no next iterator is closed and read to its end: its split is
 * reported finished. An expired iterator is renewed after the last record read.
 */
final class ShardSplitReader implements SplitReader<ShardRecord, ShardSplit> {
    private final KinesisApiClient client;
    private final String streamName;
    private final int pageSize;
    private final long idleMillis;
    private final AtomicLong millisBehind;
    private final Map<String, ShardCursor> cursors = new LinkedHashMap<>();
    private final Object wakeUp = new Object();
    private boolean wokenUp;

    ShardSplitReader(KinesisApiClient.Settings settings, String streamName, int pageSize,
                     long idleMillis, AtomicLong millisBehind) {
        this.client = new KinesisApiClient(settings);
        this.streamName = streamName;
        this.pageSize = pageSize;
        this.idleMillis = idleMillis;
        this.millisBehind = millisBehind;
    }

    /** Where one shard's reading stands on this thread. */
    private static final class ShardCursor {
        final String shardId;
        String position;   // as in ShardSplit, advanced past every record fetched
        String iterator;   // null until asked for (or after expiry)
        long dueAt;
        long behind;

        ShardCursor(ShardSplit split) {
            this.shardId = split.shardId();
            this.position = split.position();
        }
    }

    @Override
    public RecordsWithSplitIds<ShardRecord> fetch() throws IOException {
        RecordsBySplits.Builder<ShardRecord> out = new RecordsBySplits.Builder<>();
        long now = System.currentTimeMillis();
        long nextDue = Long.MAX_VALUE;
        boolean any = false;
        try {
            for (ShardCursor cursor : new ArrayList<>(cursors.values())) {
                if (cursor.dueAt > now) {
                    nextDue = Math.min(nextDue, cursor.dueAt);
                    continue;
                }
                any |= readPage(cursor, out);
                nextDue = Math.min(nextDue, cursor.dueAt);
            }
            long behind = 0;
            for (ShardCursor cursor : cursors.values()) {
                behind = Math.max(behind, cursor.behind);
            }
            millisBehind.set(behind);
            if (!any) {
                idle(nextDue == Long.MAX_VALUE ? idleMillis : nextDue - now);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while reading " + streamName, e);
        }
        return out.build();
    }

    /** One GetRecords on one shard; true when it gave records or finished the shard. */
    private boolean readPage(ShardCursor cursor, RecordsBySplits.Builder<ShardRecord> out)
            throws IOException, InterruptedException {
        if (cursor.iterator == null) {
            cursor.iterator = iterator(cursor);
        }
        ObjectNode body = KinesisApiClient.body();
        body.put("ShardIterator", cursor.iterator);
        body.put("Limit", pageSize);
        JsonNode page;
        try {
            page = client.call("GetRecords", body);
        } catch (KinesisApiClient.KinesisApiException e) {
            if ("ExpiredIteratorException".equals(e.type)) {
                cursor.iterator = null;  // renewed after the last record at the next call
                return false;
            }
            throw e;
        }
        JsonNode records = page.path("Records");
        for (JsonNode record : records) {
            String sequence = record.get("SequenceNumber").asText();
            long arrival = (long) Math.floor(
                    record.path("ApproximateArrivalTimestamp").asDouble() * 1000.0);
            byte[] data = Base64.getDecoder().decode(record.get("Data").asText());
            String key = record.path("PartitionKey").asText();
            out.add(cursor.shardId, new ShardRecord(
                    RecordJson.envelope(data, key, sequence, cursor.shardId, arrival),
                    arrival, sequence));
            cursor.position = ShardSplit.AFTER + sequence;
        }
        cursor.behind = page.path("MillisBehindLatest").asLong(0);
        JsonNode next = page.get("NextShardIterator");
        if (next == null || next.isNull()) {  // closed and read to its end
            cursors.remove(cursor.shardId);
            out.addFinishedSplit(cursor.shardId);
            return true;
        }
        cursor.iterator = next.asText();
        boolean more = records.size() >= pageSize || cursor.behind > 0;
        cursor.dueAt = more ? 0 : System.currentTimeMillis() + idleMillis;
        return records.size() > 0;
    }

    private String iterator(ShardCursor cursor) throws IOException, InterruptedException {
        ObjectNode body = KinesisApiClient.body();
        body.put("StreamName", streamName);
        body.put("ShardId", cursor.shardId);
        String position = cursor.position;
        if (position.startsWith(ShardSplit.AFTER)) {
            body.put("ShardIteratorType", "AFTER_SEQUENCE_NUMBER");
            body.put("StartingSequenceNumber", position.substring(ShardSplit.AFTER.length()));
        } else if (position.startsWith(ShardSplit.AT_TIMESTAMP)) {
            long millis = Long.parseLong(position.substring(ShardSplit.AT_TIMESTAMP.length()));
            body.put("ShardIteratorType", "AT_TIMESTAMP");
            body.put("Timestamp", millis / 1000.0);
        } else {
            body.put("ShardIteratorType", "TRIM_HORIZON");
        }
        return client.call("GetShardIterator", body).get("ShardIterator").asText();
    }

    private void idle(long millis) throws InterruptedException {
        synchronized (wakeUp) {
            if (!wokenUp && millis > 0) {
                wakeUp.wait(Math.min(millis, idleMillis));
            }
            wokenUp = false;
        }
    }

    @Override
    public void handleSplitsChanges(SplitsChange<ShardSplit> change) {
        if (change instanceof SplitsAddition) {
            for (ShardSplit split : change.splits()) {
                cursors.put(split.shardId(), new ShardCursor(split));
            }
        }
    }

    @Override
    public void wakeUp() {
        synchronized (wakeUp) {
            wokenUp = true;
            wakeUp.notifyAll();
        }
    }

    @Override
    public void close() {
        client.close();
    }

    /** The shards this reader reads now (for tests and logs). */
    List<String> shardIds() {
        return new ArrayList<>(cursors.keySet());
    }
}
