package forestream.flink;

import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.ByteArrayInputStream;

/** Shard splits in checkpoints and savepoints: version 1 = shard id, position (UTF). */
public final class ShardSplitSerializer implements SimpleVersionedSerializer<ShardSplit> {
    static final ShardSplitSerializer INSTANCE = new ShardSplitSerializer();

    @Override
    public int getVersion() {
        return 1;
    }

    @Override
    public byte[] serialize(ShardSplit split) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeUTF(split.shardId());
            out.writeUTF(split.position());
        }
        return bytes.toByteArray();
    }

    @Override
    public ShardSplit deserialize(int version, byte[] serialized) throws IOException {
        if (version != 1) {
            throw new IOException("shard split state of version " + version + " is not "
                    + "known to this connector (it reads version 1)");
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
            return new ShardSplit(in.readUTF(), in.readUTF());
        }
    }
}
