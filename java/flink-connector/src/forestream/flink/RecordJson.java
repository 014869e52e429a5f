package forestream.flink;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonGenerator;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * How record data travels as JSON between Flink and Python: a record's bytes that are one
 * UTF-8 JSON value go as that value; any other bytes as {@code {"b64": "<base64>"}}.
 */
final class RecordJson {
    private static final JsonFactory FACTORY = KinesisApiClient.JSON.getFactory();

    private RecordJson() {
    }

    /** The source's output for one record (see {@link KinesisApiSource}). */
    static String envelope(byte[] data, String partitionKey, String sequenceNumber,
                           String shardId, long arrivalMillis) {
        StringWriter text = new StringWriter(data.length + 160);
        try (JsonGenerator out = FACTORY.createGenerator(text)) {
            out.writeStartObject();
            out.writeFieldName("data");
            String json = asJsonText(data);
            if (json != null) {
                out.writeRawValue(json);
            } else {
                out.writeStartObject();
                out.writeStringField("b64", Base64.getEncoder().encodeToString(data));
                out.writeEndObject();
            }
            out.writeStringField("partitionKey", partitionKey);
            out.writeStringField("sequenceNumber", sequenceNumber);
            out.writeStringField("shardId", shardId);
            out.writeNumberField("arrivalMillis", arrivalMillis);
            out.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException(e);  // a StringWriter does not fail
        }
        return text.toString();
    }

    /** The text of {@code data} if it is exactly one JSON value in UTF-8, else null. */
    static String asJsonText(byte[] data) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(data)).toString();
        } catch (CharacterCodingException notUtf8) {
            return null;
        }
        try (JsonParser parser = FACTORY.createParser(text)) {
            if (parser.nextToken() == null) {
                return null;  // empty or blank
            }
            parser.skipChildren();
            return parser.nextToken() == null ? text : null;
        } catch (IOException notJson) {
            return null;
        }
    }

    /** Whether {@code data} is the {@code {"b64": ...}} form of bytes that are not JSON. */
    static boolean isBytes(JsonNode data) {
        return data.isObject() && data.size() == 1 && data.has("b64")
                && data.get("b64").isTextual();
    }

    /** The bytes a sink element's {@code data} stands for (the inverse of the above). */
    static byte[] dataBytes(JsonNode data) throws IOException {
        if (isBytes(data)) {
            try {
                return Base64.getDecoder().decode(data.get("b64").asText());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("\"b64\" is not valid base64: "
                        + e.getMessage(), e);
            }
        }
        return KinesisApiClient.JSON.writeValueAsBytes(data);
    }
}
