package forestream.flink;

import org.apache.flink.core.io.SimpleVersionedSerializer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * What the split enumerator checkpoints: shards handed to readers (their positions live in
 * the readers' state), shards read to their end, splits waiting for a reader (with their
 * positions: a split given back by a failed reader keeps where it was), and whether the
 * first listing was done (LATEST applies to the shards open at the job's first start only).
 */
public final class EnumeratorState {
    final Set<String> assigned;
    final Set<String> finished;
    final Map<String, String> pending;
    final boolean initialized;

    EnumeratorState(Set<String> assigned, Set<String> finished, Map<String, String> pending,
                    boolean initialized) {
        this.assigned = new TreeSet<>(assigned);
        this.finished = new TreeSet<>(finished);
        this.pending = new LinkedHashMap<>(pending);
        this.initialized = initialized;
    }

    /** Version 1: flag, then the three collections, each as a count and UTF strings. */
    public static final class Serializer implements SimpleVersionedSerializer<EnumeratorState> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(EnumeratorState state) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeBoolean(state.initialized);
                writeSet(out, state.assigned);
                writeSet(out, state.finished);
                out.writeInt(state.pending.size());
                for (Map.Entry<String, String> entry : state.pending.entrySet()) {
                    out.writeUTF(entry.getKey());
                    out.writeUTF(entry.getValue());
                }
            }
            return bytes.toByteArray();
        }

        @Override
        public EnumeratorState deserialize(int version, byte[] serialized) throws IOException {
            if (version != 1) {
                throw new IOException("enumerator state of version " + version + " is not "
                        + "known to this connector (it reads version 1)");
            }
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                boolean initialized = in.readBoolean();
                Set<String> assigned = readSet(in);
                Set<String> finished = readSet(in);
                Map<String, String> pending = new LinkedHashMap<>();
                for (int i = in.readInt(); i > 0; i--) {
                    pending.put(in.readUTF(), in.readUTF());
                }
                return new EnumeratorState(assigned, finished, pending, initialized);
            }
        }

        private static void writeSet(DataOutputStream out, Set<String> items) throws IOException {
            out.writeInt(items.size());
            for (String item : items) {
                out.writeUTF(item);
            }
        }

        private static Set<String> readSet(DataInputStream in) throws IOException {
            Set<String> items = new TreeSet<>();
            for (int i = in.readInt(); i > 0; i--) {
                items.add(in.readUTF());
            }
            return items;
        }
    }
}
