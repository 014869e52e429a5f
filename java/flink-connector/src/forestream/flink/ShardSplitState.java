package forestream.flink;

/** A split's mutable position while a reader holds it. */
final class ShardSplitState {
    final String shardId;
    String position;

    ShardSplitState(ShardSplit split) {
        this.shardId = split.shardId();
        this.position = split.position();
    }

    ShardSplit toSplit() {
        return new ShardSplit(shardId, position);
    }
}
