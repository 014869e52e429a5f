package forestream.flink;

/** One record read from a shard: its JSON envelope (what the source emits), its arrival
 * time (the record's timestamp) and its sequence number (the split's new position). */
final class ShardRecord {
    final String json;
    final long arrivalMillis;
    final String sequenceNumber;

    ShardRecord(String json, long arrivalMillis, String sequenceNumber) {
        this.json = json;
        this.arrivalMillis = arrivalMillis;
        this.sequenceNumber = sequenceNumber;
    }
}
