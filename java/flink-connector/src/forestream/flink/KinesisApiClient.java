package forestream.flink;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.Serializable;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The few Kinesis Data Streams calls the source and sink make, over the JSON 1.1 protocol
 * with {@code java.net.http} (no AWS SDK: none is on a Flink cluster's class path).
 *
 * <p>Every call is signed with AWS Signature V4 (service {@code kinesis}): a forestream
 * server without credentials asks for a signature of AWS's form but verifies nothing
 * (unless started with {@code FORESTREAM_REQUIRE_SIGNATURE=0}, when it asks for none); a
 * server with credentials, and real Kinesis, check it. Credentials come from the process environment
 * as forestream's own clients read them: {@code FORESTREAM_ACCESS_KEY_ID} /
 * {@code FORESTREAM_SECRET_ACCESS_KEY}, else {@code AWS_ACCESS_KEY_ID} /
 * {@code AWS_SECRET_ACCESS_KEY}, else placeholders; region {@code FORESTREAM_REGION}, else
 * {@code AWS_REGION}, else us-east-1. A non-empty access token is sent as
 * {@code X-Forestream-Token} (forestream's REST routes ask for it; the Kinesis routes do
 * not, so it does no harm there).
 *
 * <p>Transient failures (connection errors, HTTP 5xx, throttling) are retried with
 * exponential backoff up to {@link #MAX_ATTEMPTS} times; any other AWS error is raised at
 * once as a {@link KinesisApiException} carrying AWS's error type and message.
 */
public final class KinesisApiClient implements AutoCloseable {
    static final int MAX_ATTEMPTS = 10;
    private static final String JSON_11 = "application/x-amz-json-1.1";
    private static final DateTimeFormatter AMZ_DATE =
            DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");
    private static final Set<String> RETRIED = Set.of(
            "ProvisionedThroughputExceededException", "LimitExceededException",
            "ThrottlingException", "InternalFailure", "ServiceUnavailable",
            "KMSThrottlingException");
    static final ObjectMapper JSON = new ObjectMapper();

    /** Where and as whom to call; serializable, so sources and sinks carry it to tasks. */
    public static final class Settings implements Serializable {
        private static final long serialVersionUID = 1L;
        final String endpointUrl;
        final String accessToken;
        final String accessKeyId;
        final String secretAccessKey;
        final String region;

        public Settings(String endpointUrl, String accessToken, String accessKeyId,
                        String secretAccessKey, String region) {
            if (endpointUrl == null || !(endpointUrl.startsWith("http://")
                    || endpointUrl.startsWith("https://"))) {
                throw new IllegalArgumentException("endpointUrl must be an http:// or "
                        + "https:// URL of a Kinesis API (a forestream server), got '"
                        + endpointUrl + "'");
            }
            this.endpointUrl = endpointUrl;
            this.accessToken = accessToken == null ? "" : accessToken;
            this.accessKeyId = accessKeyId;
            this.secretAccessKey = secretAccessKey;
            this.region = region;
        }

        /** Credentials and region from the environment (see the class documentation). */
        public static Settings fromEnvironment(String endpointUrl, String accessToken) {
            return new Settings(endpointUrl, accessToken, null, null, null);
        }

        String key() {
            return accessKeyId != null ? accessKeyId : firstEnv("local",
                    "FORESTREAM_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID");
        }

        String secret() {
            return secretAccessKey != null ? secretAccessKey : firstEnv("local",
                    "FORESTREAM_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY");
        }

        String regionName() {
            return region != null ? region : firstEnv("us-east-1", "FORESTREAM_REGION",
                    "AWS_REGION");
        }
    }

    /** An error answer of the API: AWS's error type (e.g. ResourceNotFoundException). */
    public static final class KinesisApiException extends IOException {
        private static final long serialVersionUID = 1L;
        public final String type;
        public final int status;

        KinesisApiException(String operation, int status, String type, String message) {
            super(operation + " failed: " + type + " (HTTP " + status + "): " + message);
            this.type = type;
            this.status = status;
        }
    }

    private final Settings settings;
    private final URI endpoint;
    private final HttpClient http;

    public KinesisApiClient(Settings settings) {
        this.settings = settings;
        this.endpoint = URI.create(settings.endpointUrl).resolve("/");
        // HTTP/1.1: one request per connection at a time is all a reader or writer needs,
        // and it avoids the h2c upgrade round on every new connection.
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10))
                .build();
    }

    /** Call {@code operation} (e.g. "GetRecords") with a JSON body; returns the answer. */
    public JsonNode call(String operation, ObjectNode body) throws IOException,
            InterruptedException {
        byte[] payload = JSON.writeValueAsBytes(body);
        long delay = 50;
        IOException last = null;
        for (int attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
            try {
                HttpResponse<byte[]> answer = http.send(request(operation, payload),
                        HttpResponse.BodyHandlers.ofByteArray());
                if (answer.statusCode() == 200) {
                    byte[] raw = answer.body();
                    return raw.length == 0 ? JSON.createObjectNode() : JSON.readTree(raw);
                }
                KinesisApiException error = error(operation, answer);
                if (answer.statusCode() < 500 && !RETRIED.contains(error.type)) {
                    throw error;
                }
                last = error;
            } catch (KinesisApiException e) {
                throw e;
            } catch (IOException e) {
                last = e;
            }
            Thread.sleep(delay);
            delay = Math.min(delay * 2, 2000);
        }
        throw new IOException(operation + " to " + endpoint + " failed " + MAX_ATTEMPTS
                + " times; last: " + last.getMessage(), last);
    }

    public static ObjectNode body() {
        return JSON.createObjectNode();
    }

    @Override
    public void close() {
        // HttpClient closes its connections when it is collected (Java 17 has no close()).
    }

    private HttpRequest request(String operation, byte[] payload) throws IOException {
        String target = "Kinesis_20131202." + operation;
        String date = ZonedDateTime.now(ZoneOffset.UTC).format(AMZ_DATE);
        String day = date.substring(0, 8);
        String host = endpoint.getHost() + (endpoint.getPort() > 0 ? ":" + endpoint.getPort()
                : "");
        String signedHeaders = "content-type;host;x-amz-date;x-amz-target";
        String canonical = "POST\n/\n\ncontent-type:" + JSON_11 + "\nhost:" + host
                + "\nx-amz-date:" + date + "\nx-amz-target:" + target + "\n\n" + signedHeaders
                + "\n" + hex(sha256(payload));
        String region = settings.regionName();
        String scope = day + "/" + region + "/kinesis/aws4_request";
        String toSign = "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n"
                + hex(sha256(canonical.getBytes(StandardCharsets.UTF_8)));
        byte[] key = ("AWS4" + settings.secret()).getBytes(StandardCharsets.UTF_8);
        for (String part : new String[] {day, region, "kinesis", "aws4_request"}) {
            key = hmac(key, part);
        }
        HttpRequest.Builder builder = HttpRequest.newBuilder(endpoint)
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", JSON_11)
                .header("X-Amz-Target", target)
                .header("X-Amz-Date", date)
                .header("Authorization", "AWS4-HMAC-SHA256 Credential=" + settings.key() + "/"
                        + scope + ", SignedHeaders=" + signedHeaders + ", Signature="
                        + hex(hmac(key, toSign)))
                .POST(HttpRequest.BodyPublishers.ofByteArray(payload));
        if (!settings.accessToken.isEmpty()) {
            builder.header("X-Forestream-Token", settings.accessToken);
        }
        return builder.build();
    }

    private static KinesisApiException error(String operation, HttpResponse<byte[]> answer) {
        String type = "HTTP" + answer.statusCode();
        String message = new String(answer.body(), StandardCharsets.UTF_8);
        try {
            JsonNode node = JSON.readTree(answer.body());
            if (node != null && node.isObject()) {
                String raw = node.path("__type").asText(type);
                type = raw.substring(raw.lastIndexOf('#') + 1);
                message = node.has("message") ? node.get("message").asText()
                        : node.path("Message").asText(message);
            }
        } catch (IOException notJson) {
            // keep the raw text: a proxy or a wrong URL answered
        }
        if (message.length() > 500) {
            message = message.substring(0, 500) + "...";
        }
        return new KinesisApiException(operation, answer.statusCode(), type, message);
    }

    private static String firstEnv(String fallback, String... names) {
        for (String name : names) {
            String value = System.getenv(name);
            if (value != null && !value.isEmpty()) {
                return value;
            }
        }
        return fallback;
    }

    private static byte[] sha256(byte[] data) throws IOException {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (GeneralSecurityException e) {
            throw new IOException(e);
        }
    }

    private static byte[] hmac(byte[] key, String data) throws IOException {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IOException(e);
        }
    }

    private static String hex(byte[] data) {
        StringBuilder out = new StringBuilder(data.length * 2);
        for (byte b : data) {
            out.append(Character.forDigit((b >> 4) & 0xf, 16))
                    .append(Character.forDigit(b & 0xf, 16));
        }
        return out.toString();
    }
}
