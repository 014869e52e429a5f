"""``forestream models ...``: import, register, approve, deploy and invoke models.

The ``endpoints`` sub-group and ``transform`` (:mod:`forestream.cli_endpoints`) are
registered here too; the REST client all of them use is :mod:`forestream.cli_rest`.
"""

from __future__ import annotations

import io
import sys
import tarfile
import time
from pathlib import Path

import click
from rich.table import Table

from .endpoints import endpoints, transform_cmd
from .options import console, endpoint_option, err_console, parse_pairs, rest, show_json


@click.group(short_help="Models: import, registry and approval, endpoints, invocation.")
def models() -> None:
    """Models trained anywhere: import, registry with approval, endpoints, invocation.

    \b
    forestream models import model.joblib --group churn --trust --sample-input row.json
    forestream models approve churn:1
    forestream models deploy churn:1 --endpoint-name churn --workers 2
    forestream models invoke churn --content-type application/json --body row.json
    forestream models endpoints

    The invocation route is SageMaker's: boto3's sagemaker-runtime client works against
    the server unchanged (endpoint_url=http://127.0.0.1:4567).
    """


models.add_command(endpoints)
models.add_command(transform_cmd)


@models.command("import")
@click.argument("source")
@click.option("--group", required=True, help="Model group (created if missing).")
@click.option("--framework", type=click.Choice(["sklearn", "xgboost", "lightgbm", "onnx",
                                                "pytorch", "tensorflow", "mxnet",
                                                "forestream-rcf"]),
              help="Declare the framework instead of detecting it.")
@click.option("--trust", is_flag=True, help="Allow formats that run code on load (pickle, "
              "joblib, code/inference.py). Review the source first: they run in a worker "
              "process, but they run.")
@click.option("--sample-input", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A request body to run through the model as part of validation.")
@click.option("--sample-content-type", default=None,
              help="Content type of --sample-input (default from its extension).")
@click.option("--description", default="", help="Free text kept with the version.")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
              help="Immutable metadata: commit, repository, generated_by.")
@click.option("--customer-metadata", multiple=True, metavar="KEY=VALUE",
              help="Metadata you may change later (repeatable).")
@click.option("--metric", multiple=True, metavar="NAME=NUMBER",
              help="A quality metric, e.g. auc=0.91 (repeatable).")
@click.option("--tag", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--s3-endpoint-url", default=None,
              help="S3-compatible endpoint for s3:// sources (default: the server's).")
@endpoint_option
def import_(source, group, framework, trust, sample_input, sample_content_type, description,
            metadata, customer_metadata, metric, tag, s3_endpoint_url, endpoint_url):
    """Import SOURCE as the next version of --group; prints GROUP:VERSION last.

    SOURCE: a model file, a directory, a SageMaker model.tar.gz, an MLflow model
    directory (with MLmodel), or s3://bucket/key. Local sources are uploaded to the
    server; the server validates by loading the model in a worker process.

    \b
    Examples:
      forestream models import model.joblib --group churn --trust --sample-input row.json
      forestream models import model.onnx --group churn --metric auc=0.91 --metadata commit=4f2a9c1
      forestream models import s3://models/churn/model.tar.gz --group churn
    """
    body: dict = {"framework": framework, "trust": trust, "description": description,
                  "metadata": parse_pairs(metadata, "--metadata"),
                  "customer_metadata": parse_pairs(customer_metadata, "--customer-metadata"),
                  "metrics": parse_pairs(metric, "--metric", numeric=True),
                  "tags": parse_pairs(tag, "--tag")}
    if source.startswith("s3://"):
        body["source"] = source
        if s3_endpoint_url:
            body["s3_endpoint_url"] = s3_endpoint_url
    else:
        path = Path(source)
        if not path.exists():
            raise click.BadParameter(f"{source!r} does not exist (a path, or s3://bucket/key)",
                                     param_hint="SOURCE")
        raw, filename = _pack(path)
        err_console.print(f"uploading {filename} ({len(raw):,} bytes)")
        upload = rest(endpoint_url, "POST", "/api/v1/models/uploads", raw=raw,
                      content_type="application/octet-stream", query={"filename": filename})
        body["source"] = upload["source"]
    if sample_input is not None:
        import base64

        body["sample_input_b64"] = base64.b64encode(sample_input.read_bytes()).decode()
        body["sample_content_type"] = sample_content_type or {
            ".csv": "text/csv", ".npy": "application/x-npy"}.get(sample_input.suffix.lower(),
                                                                  "application/json")
    body = {k: v for k, v in body.items() if v is not None}
    version = rest(endpoint_url, "POST", f"/api/v1/models/groups/{group}/versions", body)
    err_console.print(f"framework {version.get('framework')} "
                      f"{version.get('framework_version') or ''}, "
                      f"{version.get('size_bytes', 0):,} bytes, digest "
                      f"{(version.get('artifact_digest') or '')[:12]}")
    click.echo(f"{version['group']}:{version['version']}")


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@endpoint_option
def list_(as_json, endpoint_url):
    """List model groups: versions, the latest and the latest approved version.

    \b
    Examples:
      forestream models list
      forestream models list --json
    """
    groups, token = [], None
    while True:
        page = rest(endpoint_url, "GET", "/api/v1/models/groups", query={"next_token": token})
        groups += page["groups"]
        token = page.get("next_token")
        if not token:
            break
    if as_json:
        show_json(groups)
        return
    table = Table("group", "versions", "latest", "latest approved", "created")
    for g in groups:
        table.add_row(g["name"], str(g.get("version_count", "")),
                      str(g.get("latest_version") or "-"),
                      str(g.get("latest_approved_version") or "-"),
                      str(g.get("created_at", ""))[:19])
    console.print(table)


@models.command("versions")
@click.argument("group", required=False)
@click.option("--approval-status",
              type=click.Choice(["PendingManualApproval", "Approved", "Rejected"]),
              help="Only versions in this approval state.")
@click.option("--status", type=click.Choice(["Importing", "Ready", "Failed"]),
              help="Only versions in this import state.")
@click.option("--metadata", multiple=True, metavar="KEY=VALUE",
              help="Only versions whose (customer or immutable) metadata has KEY=VALUE.")
@click.option("--search", default=None, help="Free text in group names and descriptions.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@endpoint_option
def versions(group, approval_status, status, metadata, search, as_json, endpoint_url):
    """List model versions (of GROUP, or of every group), newest first.

    \b
    Examples:
      forestream models versions churn
      forestream models versions --approval-status PendingManualApproval
      forestream models versions --metadata commit=4f2a9c1 --json
    """
    query = {"approval_status": approval_status, "status": status, "q": search,
             "group": group}
    for key, value in (parse_pairs(metadata, "--metadata") or {}).items():
        query[f"metadata.{key}"] = value
    rows, token = [], None
    while True:
        page = rest(endpoint_url, "GET", "/api/v1/models/versions",
                    query={**query, "next_token": token})
        rows += page["versions"]
        token = page.get("next_token")
        if not token:
            break
    if as_json:
        show_json(rows)
        return
    table = Table("version", "status", "approval", "framework", "size", "created", "source")
    for v in rows:
        table.add_row(v["ref"], v["status"], v["approval_status"], f"{v.get('framework')} "
                      f"{v.get('framework_version') or ''}", f"{v.get('size_bytes') or 0:,}",
                      str(v.get("created_at", ""))[:19], str(v.get("source_uri", ""))[-40:])
    console.print(table)


@models.command("describe")
@click.argument("name")
@endpoint_option
def describe(name, endpoint_url):
    """Describe a group (NAME) or a version (NAME:VERSION, or NAME:approved for the latest
    approved one) as JSON.

    \b
    Examples:
      forestream models describe churn
      forestream models describe churn:3
      forestream models describe churn:approved
    """
    if ":" in name:
        group, version = _ref(name)
        path = (f"/api/v1/models/groups/{group}/latest-approved" if version == "approved"
                else f"/api/v1/models/groups/{group}/versions/{version}")
        show_json(rest(endpoint_url, "GET", path))
    else:
        show_json(rest(endpoint_url, "GET", f"/api/v1/models/groups/{name}"))


def _approval_command(name: str, status: str) -> None:
    @models.command(name)
    @click.argument("ref", metavar="NAME:VERSION")
    @click.option("--description", default="", help="Why (kept in the approval history).")
    @endpoint_option
    def command(ref, description, endpoint_url):
        _set_approval(ref, status, description, endpoint_url)

    command.help = (f"Mark a version {status} (kept in its approval history).\n\n"
                    f"\b\nExample:\n  forestream models {name} churn:3 "
                    f"--description \"reviewed offline metrics\"\n")


_approval_command("approve", "Approved")
_approval_command("reject", "Rejected")


@models.command("update")
@click.argument("ref", metavar="NAME:VERSION")
@click.option("--customer-metadata", multiple=True, metavar="KEY=VALUE",
              help="Set customer metadata KEY (repeatable).")
@click.option("--remove-customer-metadata", multiple=True, metavar="KEY",
              help="Remove customer metadata KEY (repeatable).")
@click.option("--metric", multiple=True, metavar="NAME=NUMBER",
              help="Set a quality metric, e.g. auc=0.93 (repeatable).")
@click.option("--tag", multiple=True, metavar="KEY=VALUE", help="Set a tag (repeatable).")
@endpoint_option
def update(ref, customer_metadata, remove_customer_metadata, metric, tag, endpoint_url):
    """Change a version's customer metadata, metrics or tags (its immutable metadata and
    artifact stay).

    \b
    Examples:
      forestream models update churn:3 --customer-metadata owner=risk-team
      forestream models update churn:3 --metric auc=0.93 --remove-customer-metadata draft
    """
    group, version = _ref(ref)
    body = {"customer_metadata": parse_pairs(customer_metadata, "--customer-metadata"),
            "remove_customer_metadata": list(remove_customer_metadata) or None,
            "metrics": parse_pairs(metric, "--metric", numeric=True),
            "tags": parse_pairs(tag, "--tag")}
    show_json(rest(endpoint_url, "PATCH", f"/api/v1/models/groups/{group}/versions/{version}",
                   {k: v for k, v in body.items() if v is not None}))


@models.command("delete")
@click.argument("name", metavar="NAME[:VERSION]")
@endpoint_option
def delete(name, endpoint_url):
    """Delete a version, or an empty group.

    \b
    Examples:
      forestream models delete churn:2
      forestream models delete churn
    """
    if ":" in name:
        group, version = _ref(name)
        rest(endpoint_url, "DELETE", f"/api/v1/models/groups/{group}/versions/{version}")
    else:
        rest(endpoint_url, "DELETE", f"/api/v1/models/groups/{name}")
    click.echo(f"deleted {name}")


@models.command("deploy")
@click.argument("refs", metavar="NAME:VERSION[=WEIGHT]...", nargs=-1, required=True)
@click.option("--endpoint-name", required=True, help="Created, or updated in place.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes per variant.")
@click.option("--no-wait", is_flag=True, help="Return without waiting for InService.")
@click.option("--timeout", type=float, default=600, show_default=True,
              help="Seconds to wait for InService.")
@endpoint_option
def deploy(refs, endpoint_name, workers, no_wait, timeout, endpoint_url):
    """Serve model versions on an endpoint and wait until it is InService.

    Several NAME:VERSION=WEIGHT give weighted variants (traffic split in proportion),
    e.g. `deploy churn:3=9 churn:4=1 --endpoint-name churn` (canary: 10% to version 4).
    Deploying to an existing endpoint updates it without dropping requests.

    \b
    Examples:
      forestream models deploy churn:3 --endpoint-name churn --workers 2
      forestream models deploy churn:3=9 churn:4=1 --endpoint-name churn
    """
    variants = []
    for item in refs:
        ref, _, weight = item.partition("=")
        group, version = _ref(ref)
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise click.BadParameter(f"{item!r}: the weight after = must be a number") from None
        variants.append({"variant_name": f"{group}-{version}", "model": f"{group}:{version}",
                         "weight": w, "workers": workers})
    try:
        rest(endpoint_url, "GET", f"/api/v1/endpoints/{endpoint_name}")
        exists = True
    except click.ClickException as exc:
        if not str(exc).startswith("404"):
            raise
        exists = False
    if exists:
        rest(endpoint_url, "PATCH", f"/api/v1/endpoints/{endpoint_name}",
             {"variants": variants})
    else:
        rest(endpoint_url, "POST", "/api/v1/endpoints",
             {"name": endpoint_name, "variants": variants})
    if no_wait:
        click.echo(f"{endpoint_name} deploying")
        return
    if exists:
        time.sleep(0.2)
    ep = _wait(endpoint_url, endpoint_name, timeout)
    if ep["status"] == "Failed" or (exists and ep.get("failure_reason")):
        raise click.ClickException(f"endpoint {endpoint_name}: {ep.get('failure_reason')}")
    click.echo(f"{endpoint_name} InService")


@models.command("invoke")
@click.argument("endpoint_name")
@click.option("--content-type", required=True, help="e.g. application/json, text/csv, "
              "application/x-npy")
@click.option("--body", "body_file", required=True, type=click.Path(allow_dash=True),
              help="Request body file ('-' for stdin).")
@click.option("--accept", default=None, help="Content type of the answer you want.")
@click.option("--custom-attributes", default=None, help="e.g. method=predict_proba")
@click.option("--target-variant", default=None,
              help="Send to this variant instead of by weight.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the response body here instead of stdout.")
@endpoint_option
def invoke(endpoint_name, content_type, body_file, accept, custom_attributes, target_variant,
           output, endpoint_url):
    """Invoke an endpoint (SageMaker runtime API) and print the response body.

    \b
    Examples:
      forestream models invoke churn --content-type application/json --body row.json
      echo '5.1,3.5,1.4' | forestream models invoke churn --content-type text/csv --body -
      forestream models invoke churn --content-type application/json --body row.json \\
          --custom-attributes method=predict_proba
    """
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    from forestream.config import client_credentials, client_region

    body = sys.stdin.buffer.read() if body_file == "-" else Path(body_file).read_bytes()
    key, secret = client_credentials()
    client = boto3.client("sagemaker-runtime", endpoint_url=endpoint_url,
                          region_name=client_region(), aws_access_key_id=key or "local",
                          aws_secret_access_key=secret or "local",
                          config=Config(retries={"max_attempts": 1}))
    args = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type}
    for name, value in (("Accept", accept), ("CustomAttributes", custom_attributes),
                        ("TargetVariant", target_variant)):
        if value:
            args[name] = value
    try:
        answer = client.invoke_endpoint(**args)
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}") from None
    except botocore.exceptions.EndpointConnectionError:
        raise click.ClickException(f"cannot reach {endpoint_url}: is `forestream server` "
                                   "running?") from None
    payload = answer["Body"].read()
    err_console.print(f"variant {answer.get('InvokedProductionVariant')}, "
                      f"{answer.get('ContentType')}")
    if output is not None:
        output.write_bytes(payload)
    else:
        sys.stdout.buffer.write(payload)
        if not payload.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")


# --------------------------------------------------------------------------- helpers

def _ref(text: str) -> tuple[str, str]:
    group, sep, version = text.partition(":")
    if not sep or not group or not version:
        raise click.BadParameter(f"{text!r}: expected GROUP:VERSION, e.g. churn:3")
    return group, version


def _pack(path: Path) -> tuple[bytes, str]:
    """A local file as is; a directory as a gzipped tar of its contents (model files at
    the root, as SageMaker's model.tar.gz)."""
    if path.is_file():
        return path.read_bytes(), path.name
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for item in sorted(path.rglob("*")):
            if item.is_symlink():
                raise click.ClickException(f"{item} is a symbolic link; copy the file it "
                                           "points to into the model directory instead")
            tar.add(item, arcname=str(item.relative_to(path)), recursive=False)
    return buffer.getvalue(), f"{path.name}.tar.gz"


def _set_approval(ref: str, status: str, description: str, endpoint_url: str) -> None:
    group, version = _ref(ref)
    result = rest(endpoint_url, "PATCH", f"/api/v1/models/groups/{group}/versions/{version}",
                  {"approval_status": status, "approval_description": description})
    click.echo(f"{result['ref']} {result['approval_status']}")


def _wait(endpoint_url: str, name: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    with err_console.status(f"waiting for endpoint {name}"):
        while True:
            ep = rest(endpoint_url, "GET", f"/api/v1/endpoints/{name}")
            if ep["status"] in ("InService", "Failed"):
                return ep
            if time.monotonic() > deadline:
                raise click.ClickException(f"endpoint {name} is still {ep['status']} after "
                                           f"{timeout:.0f} s")
            time.sleep(0.25)
