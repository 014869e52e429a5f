// Java's java.net.http.HttpClient with its defaults against forestream server: it asks
// for HTTP/2 on plain http:// with "Upgrade: h2c", then sends later requests over the
// upgraded connection. Kinesis calls signed with AWS Signature V4 by hand.
//
//   java KinesisHttpClient.java ENDPOINT STREAM [ACCESS_KEY SECRET]
//
// Prints one JSON object: the records read back and the HTTP version of every answer.
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public class KinesisHttpClient {
    static final HttpClient CLIENT = HttpClient.newHttpClient();  // defaults: HTTP/2 preferred
    static final List<String> VERSIONS = new ArrayList<>();
    static URI endpoint;
    static String accessKey = "local", secret = "local";

    public static void main(String[] args) throws Exception {
        endpoint = URI.create(args[0]);
        String stream = args[1];
        if (args.length > 3) {
            accessKey = args[2];
            secret = args[3];
        }
        call("CreateStream", "{\"StreamName\":\"" + stream + "\",\"ShardCount\":1}");
        for (int i = 0; !call("DescribeStreamSummary", "{\"StreamName\":\"" + stream + "\"}")
                .contains("\"ACTIVE\""); i++) {
            if (i > 100) throw new IllegalStateException("stream never became ACTIVE");
            Thread.sleep(100);
        }
        StringBuilder records = new StringBuilder();
        for (int i = 0; i < 3; i++) {
            if (i > 0) records.append(',');
            String data = Base64.getEncoder().encodeToString(
                    ("java-" + i).getBytes(StandardCharsets.UTF_8));
            records.append("{\"Data\":\"").append(data).append("\",\"PartitionKey\":\"k")
                    .append(i).append("\"}");
        }
        String put = call("PutRecords", "{\"StreamName\":\"" + stream + "\",\"Records\":["
                + records + "]}");
        String iterator = field(call("GetShardIterator", "{\"StreamName\":\"" + stream
                + "\",\"ShardId\":\"shardId-000000000000\",\"ShardIteratorType\":"
                + "\"TRIM_HORIZON\"}"), "ShardIterator");
        String got = call("GetRecords", "{\"ShardIterator\":\"" + iterator + "\"}");
        List<String> read = new ArrayList<>();
        Matcher data = Pattern.compile("\"Data\":\"([^\"]*)\"").matcher(got);
        while (data.find()) {
            read.add("\"" + new String(Base64.getDecoder().decode(data.group(1)),
                    StandardCharsets.UTF_8) + "\"");
        }
        System.out.println("{\"failed\":" + field(put, "FailedRecordCount") + ",\"records\":"
                + read + ",\"versions\":" + VERSIONS.stream().map(v -> "\"" + v + "\"").toList()
                + "}");
    }

    static String call(String operation, String body) throws Exception {
        String target = "Kinesis_20131202." + operation;
        String type = "application/x-amz-json-1.1";
        String date = ZonedDateTime.now(ZoneOffset.UTC).format(
                DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'"));
        String host = endpoint.getHost() + (endpoint.getPort() > 0 ? ":" + endpoint.getPort() : "");
        String signed = "content-type;host;x-amz-date;x-amz-target";
        String canonical = "POST\n/\n\ncontent-type:" + type + "\nhost:" + host
                + "\nx-amz-date:" + date + "\nx-amz-target:" + target + "\n\n" + signed + "\n"
                + hex(sha256(body.getBytes(StandardCharsets.UTF_8)));
        String scope = date.substring(0, 8) + "/us-east-1/kinesis/aws4_request";
        String toSign = "AWS4-HMAC-SHA256\n" + date + "\n" + scope + "\n"
                + hex(sha256(canonical.getBytes(StandardCharsets.UTF_8)));
        byte[] key = ("AWS4" + secret).getBytes(StandardCharsets.UTF_8);
        for (String part : new String[] {date.substring(0, 8), "us-east-1", "kinesis",
                                          "aws4_request"}) {
            key = hmac(key, part);
        }
        HttpRequest request = HttpRequest.newBuilder(endpoint.resolve("/"))
                .header("Content-Type", type)
                .header("X-Amz-Target", target)
                .header("X-Amz-Date", date)
                .header("Authorization", "AWS4-HMAC-SHA256 Credential=" + accessKey + "/" + scope
                        + ", SignedHeaders=" + signed + ", Signature=" + hex(hmac(key, toSign)))
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build();
        HttpResponse<String> response = CLIENT.send(request, HttpResponse.BodyHandlers.ofString());
        VERSIONS.add(response.version().toString());
        if (response.statusCode() != 200) {
            throw new IllegalStateException(operation + " answered " + response.statusCode()
                    + ": " + response.body());
        }
        return response.body();
    }

    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\":\"?([^\",}]*)").matcher(json);
        if (!m.find()) throw new IllegalStateException(name + " missing in " + json);
        return m.group(1);
    }

    static byte[] sha256(byte[] data) throws Exception {
        return MessageDigest.getInstance("SHA-256").digest(data);
    }

    static byte[] hmac(byte[] key, String data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
    }

    static String hex(byte[] data) {
        return HexFormat.of().formatHex(data);
    }
}
