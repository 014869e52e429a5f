package forestream.flink;

import org.apache.flink.api.connector.source.SourceOutput;
import org.apache.flink.connector.base.source.reader.RecordEmitter;

/** Emits a record's envelope with its arrival time as the timestamp, and moves its
 * split's position past it (on the task thread, so position and output agree in every
 * checkpoint). */
final class ShardRecordEmitter implements RecordEmitter<ShardRecord, String, ShardSplitState> {
    @Override
    public void emitRecord(ShardRecord record, SourceOutput<String> output,
                           ShardSplitState state) {
        output.collect(record.json, record.arrivalMillis);
        state.position = ShardSplit.AFTER + record.sequenceNumber;
    }
}
