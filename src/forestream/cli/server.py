"""``forestream server`` and ``forestream console-url``."""

from __future__ import annotations

import ssl
from pathlib import Path

import click
from rich.console import Console

console = Console()


@click.command(short_help="Run the server: Kinesis and SageMaker APIs, REST API, console.")
@click.option("--host", default=None, help="Interface to listen on [env FORESTREAM_HOST; "
              "default 127.0.0.1].")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port [env FORESTREAM_PORT; default 4567].")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where all state lives [env FORESTREAM_DATA_DIR; default ./.forestream].")
@click.option("--no-fsync", is_flag=True,
              help="Acknowledge writes before they reach the disk (faster, not crash-safe).")
@click.option("--throughput-limits", is_flag=True,
              help="Enforce Kinesis per-shard limits (1 MiB/s, 1,000 records/s in; 2 MiB/s "
                   "out) to exercise producers' retry logic.")
@click.option("--http2", is_flag=True, hidden=True,
              help="Accepted for old scripts: every port speaks HTTP/2 now.")
@click.option("--tls-port", type=click.IntRange(1, 65535),
              help="Also listen with TLS on this port (HTTP/2 or HTTP/1.1, chosen by ALPN); "
                   "needs --tls-cert and --tls-key.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate (chain) for --tls-port.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM private key for --tls-port.")
@click.option("--allow-code", is_flag=True,
              help="Let clients make the server run their code: applications, pickled "
                   "models, SageMaker inference scripts [env FORESTREAM_ALLOW_CODE=1].")
@click.option("--import-root", "import_roots", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A server folder requests may name as a source (application code, "
                   "model files, metric files); repeatable [env FORESTREAM_IMPORT_ROOTS]. "
                   "Without it, clients upload what they import.")
@click.option("--outbound-host", "outbound_hosts", multiple=True, metavar="HOST[:PORT]",
              help="A host requests may make the server fetch from (Prometheus, an S3 "
                   "endpoint); repeatable [env FORESTREAM_OUTBOUND_HOSTS].")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A Host name accepted besides localhost/127.0.0.1/[::1] (e.g. behind a "
                   "proxy); repeatable [env FORESTREAM_ALLOWED_HOSTS].")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="A web origin (https://app.example) whose pages may call this server "
                   "from a browser; repeatable [env FORESTREAM_CORS_ORIGINS].")
@click.option("--streams", "streams_url", default=None, metavar="nats://HOST:PORT[,...]",
              help="Keep streams on a NATS JetStream cluster instead of the data directory: "
                   "its nodes' URLs, comma-separated. Several servers on the same cluster "
                   "serve the same streams [env FORESTREAM_STREAMS].")
@click.option("--replicas", "streams_replicas", default=None, type=click.IntRange(1, 5),
              help="With --streams: copies of every shard and of the metadata kept by the "
                   "cluster (3 survives a node's loss) [env FORESTREAM_STREAMS_REPLICAS; "
                   "default 1].")
@click.option("--streams-key-file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --streams: a 32-byte master key, the same file on every server, "
                   "that wraps streams' encryption keys [env FORESTREAM_STREAMS_KEY_FILE].")
@click.option("--no-token", is_flag=True,
              help="Do not ask for the access token on the REST API, console and metrics "
                   "(anyone who reaches the port may use them) [env FORESTREAM_NO_TOKEN=1].")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="What the server logs to stderr.")
def server(host, port, data_dir, no_fsync, throughput_limits, http2, tls_port, tls_cert,
           tls_key, allow_code, import_roots, outbound_hosts, allowed_hosts, cors_origins,
           streams_url, streams_replicas, streams_key_file, no_token, log_level):
    """Run the forestream server. One port serves:

    \b
      POST /       the Kinesis Data Streams API and the SageMaker API (model package
                   groups and packages, models, endpoint configs, endpoints),
                   chosen by X-Amz-Target
      POST /endpoints/NAME/invocations
                   the SageMaker runtime API (InvokeEndpoint)
      /api/v1/...  forestream's REST API: streams, applications (stream processing,
                   embedded or on Flink), models and endpoints, optimizer analyses;
                   its OpenAPI schema at /api/v1/openapi.json
      /console     the web console (`forestream console-url` prints a signed-in link)
      /health      liveness, for load balancers
      /metrics     Prometheus metrics of streams, applications and endpoints

    Any Kinesis or SageMaker client works unchanged (boto3, the AWS CLI, the AWS SDKs for
    JavaScript, Java, Go...); point it at the server's URL. The port speaks HTTP/1.1 and
    HTTP/2 (h2c: by prior knowledge or Upgrade), SubscribeToShard's event stream
    included:

    \b
      forestream server --port 4567 &
      aws kinesis create-stream --stream-name demo --shard-count 2 \\
          --endpoint-url http://127.0.0.1:4567
      python -c "import boto3; k = boto3.client('kinesis', endpoint_url='http://127.0.0.1:4567',
          region_name='us-east-1'); print(k.list_streams())"

    The REST API, console and metrics ask for an access token, created at the first
    start (printed below, stored in DATA_DIR/access-token); forestream commands find it
    themselves. Set FORESTREAM_ACCESS_KEY_ID and FORESTREAM_SECRET_ACCESS_KEY to require
    every request signed (AWS Signature V4) with those credentials. Without them a
    Kinesis request must still carry a signature (any credentials), as AWS asks and as
    SDKs always send; FORESTREAM_REQUIRE_SIGNATURE=0 accepts unsigned ones.

    Applications run your code, so the server refuses them unless you allow it:

    \b
      forestream server --allow-code &
      forestream apps create temps --code job.py && forestream apps start temps

    Clients that speak HTTP/2 only over TLS, or a network that needs TLS: add a TLS
    port (h2 or HTTP/1.1 by ALPN; the certificate must name the host clients use):

    \b
      forestream server --tls-port 4568 --tls-cert cert.pem --tls-key key.pem
      aws kinesis list-streams --endpoint-url https://127.0.0.1:4568 --ca-bundle cert.pem
    """
    from forestream.config import Settings
    from forestream.errors import ForestreamError
    from forestream.server import Server

    settings = Settings()
    settings.host = host or settings.host
    settings.port = port or settings.port
    settings.data_dir = data_dir or settings.data_dir
    settings.fsync = settings.fsync and not no_fsync
    settings.throughput_limits = settings.throughput_limits or throughput_limits
    settings.allow_code = settings.allow_code or allow_code
    settings.import_roots = [*settings.import_roots, *import_roots]
    settings.outbound_hosts = [*settings.outbound_hosts, *outbound_hosts]
    settings.allowed_hosts = [*settings.allowed_hosts, *allowed_hosts]
    settings.cors_origins = [*settings.cors_origins, *cors_origins]
    settings.require_token = settings.require_token and not no_token
    settings.streams = streams_url or settings.streams
    settings.streams_replicas = streams_replicas or settings.streams_replicas
    settings.streams_key_file = streams_key_file or settings.streams_key_file
    if (tls_port is None) != (tls_cert is None) or (tls_port is None) != (tls_key is None):
        raise click.UsageError("--tls-port, --tls-cert and --tls-key go together")
    if tls_port is not None and tls_port == settings.port:
        raise click.UsageError(f"--tls-port {tls_port} must differ from --port")
    try:
        running = Server(settings, log_level, tls_port=tls_port, tls_cert=tls_cert,
                         tls_key=tls_key)
    except ssl.SSLError as error:
        raise click.UsageError(f"--tls-cert {tls_cert} / --tls-key {tls_key}: {error}") \
            from None
    except ValueError as error:  # --streams / --replicas / the key file
        raise click.UsageError(str(error)) from None
    except ForestreamError as error:  # the JetStream cluster cannot be reached
        raise click.ClickException(str(error)) from None
    console.print(f"forestream server on [cyan]http://{settings.host}:{settings.port}[/] "
                  "(HTTP/1.1 and HTTP/2, "
                  f"data in {settings.data_dir}, fsync {'on' if settings.fsync else 'off'}, "
                  + (f"streams on {settings.streams} ×{settings.streams_replicas}, "
                     if settings.streams else "")
                  + f"SigV4 {'required' if settings.auth_enabled else 'off'}, "
                  f"code {'allowed' if settings.allow_code else 'refused'})")
    if running.token:
        console.print(f"console: [cyan]{_console_url(settings.host, settings.port)}/?token="
                      f"{running.token}[/]  (token in {settings.data_dir}/access-token)",
                      soft_wrap=True)
    else:
        console.print("[yellow]no access token: whoever reaches the port can use the REST "
                      "API and console[/]")
    if tls_port is not None:
        console.print(f"TLS (HTTP/2 or HTTP/1.1 by ALPN) on [cyan]https://{settings.host}:"
                      f"{tls_port}[/]")
    running.run()


@click.command("console-url")
@click.option("--endpoint-url", default=None, envvar="FORESTREAM_ENDPOINT_URL",
              help="The server [env FORESTREAM_ENDPOINT_URL; default http://127.0.0.1:4567].")
def console_url(endpoint_url):
    """Print a link that opens the console of a running server and signs you in.

    The token comes from FORESTREAM_TOKEN, else from the server's runtime record (a
    server you started on this machine), else ./.forestream/access-token.

    \b
      forestream console-url
      forestream console-url --endpoint-url http://127.0.0.1:4600
    """
    from forestream.access_token import find_token, servers

    url = (endpoint_url or "http://127.0.0.1:4567").rstrip("/")
    token = find_token(url)
    if token is None:
        running = ", ".join(info["url"] for info in servers()) or "none"
        raise click.ClickException(f"no access token known for {url} (servers started "
                                   f"here: {running}); set FORESTREAM_TOKEN")
    click.echo(f"{url}/?token={token}")


def _console_url(host: str, port: int) -> str:
    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    return f"http://{local}:{port}"
