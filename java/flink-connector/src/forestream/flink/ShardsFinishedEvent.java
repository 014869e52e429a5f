package forestream.flink;

import org.apache.flink.api.connector.source.SourceEvent;

import java.util.List;

/**
 * Reader to enumerator: these shards are closed and were read to their end, so their
 * children may be handed out. Sent again after a restore for the shards a reader still
 * holds as {@code FINISHED}; the enumerator treats repeats as no-ops.
 */
public final class ShardsFinishedEvent implements SourceEvent {
    private static final long serialVersionUID = 1L;
    final List<String> shardIds;

    ShardsFinishedEvent(List<String> shardIds) {
        this.shardIds = List.copyOf(shardIds);
    }
}
