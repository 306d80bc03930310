"""`azfunc start` against a real Azurite, checked with Microsoft's own storage SDKs as
the independent client: queue trigger with blob output, poison messages, blob trigger
once per blob and not again after a restart, table and blob inputs, and an input that
cannot run locally failing before the call."""
import json
import urllib.error
import urllib.request

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import (QueueServiceClient, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy)

from storage_env import AZFUNC, WAIT, Runner, wait_until

pytestmark = pytest.mark.skipif(not AZFUNC.exists(), reason=f"{AZFUNC} not built")


def queue(azurite, name, create=True):
    q = QueueServiceClient.from_connection_string(
        azurite.connection_string).get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy())
    if create:
        try:
            q.create_queue()
        except Exception:  # exists
            pass
    return q


def blob_text(azurite, container, name):
    try:
        return BlobServiceClient.from_connection_string(azurite.connection_string) \
            .get_blob_client(container, name).download_blob().readall().decode()
    except ResourceNotFoundError:
        return None


def http(runner, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{runner.port}/api/{path}", method=method,
                                 data=body.encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def runner(azurite, storage_app):
    r = Runner(storage_app, env={"Storage": azurite.connection_string})
    r.wait_for("Host started")
    yield r
    r.stop()


def test_queue_message_fires_and_blob_output_is_written(azurite, runner):
    queue(azurite, "orders").send_message(json.dumps({"id": "a1", "item": "tea"}))
    text = wait_until("the blob output", lambda: blob_text(azurite, "results", "a1.txt"))
    assert text.startswith("order a1 item tea dequeue 1 inserted 20"), text
    runner.wait_for("Executed 'Functions.on_order' (Succeeded")
    # deleted on success
    wait_until("the message to be deleted",
               lambda: not list(queue(azurite, "orders").peek_messages(max_messages=32)))
    # the blob input reads it back
    assert http(runner, "GET", "notes/a1")[1] == text
    assert http(runner, "GET", "notes/nothing")[1] == "missing"


def test_failing_message_goes_to_the_poison_queue(azurite, runner):
    queue(azurite, "fails").send_message("bad order")
    poison = queue(azurite, "fails-poison", create=False)

    def poisoned():
        try:
            return [m.content for m in poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return None
    assert wait_until("the poison queue", poisoned) == ["bad order"]
    # maxDequeueCount 2 in host.json: two failed runs, then the move
    assert runner.count("Executed 'Functions.always_fails' (Failed") == 2
    assert "cannot handle bad order (dequeue 2)" in runner.output
    assert "Moving message to queue 'fails-poison'" in runner.output
    assert not list(queue(azurite, "fails").peek_messages(max_messages=32))


def test_blob_upload_fires_once_and_not_again_after_a_restart(azurite, storage_app):
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    try:
        blobs.create_container("uploads")
    except Exception:
        pass
    seen = queue(azurite, "seen")
    seen.clear_messages()
    env = {"Storage": azurite.connection_string}
    r = Runner(storage_app, env=env)
    try:
        r.wait_for("Host started")
        blobs.get_blob_client("uploads", "hello.txt").upload_blob(b"hello", overwrite=True)
        blobs.get_blob_client("uploads", "skip.bin").upload_blob(b"no", overwrite=True)
        r.wait_for("Executed 'Functions.on_upload' (Succeeded")
        msgs = wait_until("the queue output",
                          lambda: [m.content for m in seen.peek_messages(max_messages=32)])
        assert msgs == ["uploads/hello.txt|5|hello"]
        # a second blob fires too; by then the first has been scanned again, unchanged
        blobs.get_blob_client("uploads", "second.txt").upload_blob(b"2", overwrite=True)
        r.wait_for("Executed 'Functions.on_upload' (Succeeded", count=2)
        assert r.count("Executing 'Functions.on_upload'") == 2
    finally:
        assert r.stop() == 0
    assert (storage_app / ".azfunc" / "blob-receipts" / "on_upload.json").exists()

    # restart: the receipts survive; only a new or changed blob fires
    r = Runner(storage_app, env=env)
    try:
        r.wait_for("Host started")
        blobs.get_blob_client("uploads", "third.txt").upload_blob(b"three", overwrite=True)
        r.wait_for("Executed 'Functions.on_upload' (Succeeded")
        blobs.get_blob_client("uploads", "hello.txt").upload_blob(b"hello!", overwrite=True)
        r.wait_for("Executed 'Functions.on_upload' (Succeeded", count=2)
        assert r.count("Executing 'Functions.on_upload'") == 2
        assert "uploads/hello.txt" in r.output and "uploads/second.txt" not in r.output
    finally:
        r.stop()
    contents = sorted(m.content for m in seen.peek_messages(max_messages=32))
    assert contents == sorted(["uploads/hello.txt|5|hello", "uploads/second.txt|1|2",
                               "uploads/third.txt|5|three", "uploads/hello.txt|6|hello!"])


def test_table_output_and_input(azurite, runner):
    assert http(runner, "PUT", "rows/p1/1", "Ann") == (200, "stored")
    assert http(runner, "PUT", "rows/p1/2", "Bob") == (200, "stored")
    assert http(runner, "GET", "rows/p1/1") == (200, "Ann")
    assert http(runner, "GET", "rows/p1/9") == (200, "none")
    assert http(runner, "GET", "rows/p1") == (200, "Ann,Bob")


def test_input_that_cannot_run_locally_fails_before_the_call(runner):
    status, _ = http(runner, "GET", "docs")
    assert status == 500
    runner.wait_for("Executed 'Functions.docs' (Failed")
    runner.wait_for("The input binding 'documents' (type cosmosDB) cannot be supplied: Cosmos "
                    "DB has no local emulator")
    assert "TypeError" not in runner.output


def _emulator_ports_busy():
    import socket
    for port in (10000, 10001, 10002):
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
    return False


class _DevStorage:
    connection_string = "UseDevelopmentStorage=true"


def test_start_runs_azurite_for_development_storage(storage_app):
    if _emulator_ports_busy():
        pytest.skip("something listens on 127.0.0.1:10000-10002")
    env = {"Storage": "UseDevelopmentStorage=true",
           "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    r = Runner(storage_app, env=env)
    try:
        r.wait_for("Host started")
        assert "Storage: started Azurite on 127.0.0.1:10000-10002" in r.output
        queue(_DevStorage, "orders").send_message(json.dumps({"id": "d1", "item": "cake"}))
        text = wait_until("the blob output", lambda: blob_text(_DevStorage, "results", "d1.txt"))
        assert text.startswith("order d1 item cake")
    finally:
        assert r.stop() == 0
    assert (storage_app / ".azfunc" / "azurite").is_dir()
    wait_until("Azurite to stop", lambda: not _emulator_ports_busy(), timeout=30)

    # --no-storage-emulator: nothing is started, the triggers only report the failure
    r = Runner(storage_app, "--no-storage-emulator", env=env)
    try:
        r.wait_for("Host started")
        assert "not starting Azurite (--no-storage-emulator)" in r.output
        assert not _emulator_ports_busy()
        # a blob input with nothing listening fails the invocation, not the runner
        assert http(r, "GET", "notes/n1")[0] == 500
    finally:
        assert r.stop() == 0, r.output


def admin(runner, name, text):
    req = urllib.request.Request(f"http://127.0.0.1:{runner.port}/admin/functions/{name}",
                                 method="POST", data=json.dumps({"input": text}).encode())
    try:
        with urllib.request.urlopen(req, timeout=WAIT) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_admin_invocations_of_triggers_without_a_local_service():
    from storage_env import APPS
    r = Runner(APPS / "remote_app")
    try:
        r.wait_for("Host started")
        assert admin(r, "on_event", "hello")[0] == 202
        r.wait_for("Executed 'Functions.on_event' (Succeeded")
        assert "event hello seq 0" in r.output
        assert "Output 'out' (eventHub, not delivered locally): forwarded hello" in r.output
        assert admin(r, "on_events", '["a", {"b": 1}]')[0] == 202
        r.wait_for("Executed 'Functions.on_events' (Succeeded")
        assert "events ['a', '{\"b\":1}']" in r.output
        assert admin(r, "on_message", "order 7")[0] == 202
        r.wait_for("Executed 'Functions.on_message' (Succeeded")
        assert "message order 7 delivery 1 id-length 36" in r.output
        assert admin(r, "on_grid", '{"size": 3}')[0] == 202
        r.wait_for("Executed 'Functions.on_grid' (Succeeded")
        assert "grid azfunc.admin {'size': 3}" in r.output
        assert admin(r, "on_docs", '{"id": "d1"}')[0] == 202
        r.wait_for("Executed 'Functions.on_docs' (Succeeded")
        assert "docs 1 first d1" in r.output
        status, text = admin(r, "on_docs", "not json")
        assert status == 400 and "JSON document" in text
        assert "Failed" not in r.output, r.output
    finally:
        assert r.stop() == 0


def test_sdk_type_blob_bindings_get_a_client(azurite, tmp_path):
    pytest.importorskip("azurefunctions.extensions.bindings.blob")
    import shutil
    from storage_env import APPS
    app = tmp_path / "sdk_app"
    shutil.copytree(APPS / "sdk_app", app)
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    for c in ("docs", "sdk-in"):
        try:
            blobs.create_container(c)
        except Exception:
            pass
    blobs.get_blob_client("docs", "readme.txt").upload_blob(b"read me", overwrite=True)
    r = Runner(app, env={"Storage": azurite.connection_string})
    try:
        r.wait_for("Host started")
        assert http(r, "GET", "sdk/readme") == (200, "readme.txt: read me")
        blobs.get_blob_client("sdk-in", "note.txt").upload_blob(b"via sdk", overwrite=True)
        r.wait_for("Executed 'Functions.sdk_trigger' (Succeeded")
        assert "sdk blob note.txt says via sdk" in r.output
    finally:
        r.stop()


def test_lease_is_renewed_while_the_function_runs(azurite, storage_app):
    # a 6 s lease renewed every 3 s outlives a 9 s function: it runs once
    r = Runner(storage_app, env={"Storage": azurite.connection_string,
                                 "AZFUNC_QUEUE_LEASE_SECONDS": "6"})
    try:
        r.wait_for("Host started")
        queue(azurite, "slow").send_message("long job")
        r.wait_for("Executed 'Functions.slow' (Succeeded")
        assert r.count("slow start long job") == 1
        assert "dequeue 2" not in r.output
        wait_until("the message to be deleted",
                   lambda: not list(queue(azurite, "slow").peek_messages(max_messages=32)))
    finally:
        r.stop()


def test_bad_queue_options_in_host_json_stop_the_start(storage_app):
    (storage_app / "host.json").write_text(
        '{"version": "2.0", "extensions": {"queues": {"batchSize": 64}}}')
    r = Runner(storage_app)
    assert r.proc.wait(WAIT) != 0
    r.stop()
    assert "host.json: extensions.queues.batchSize must be 1..32" in r.output


def test_missing_connection_settings_are_warned_about(storage_app):
    r = Runner(storage_app, env={"Storage": "", "AzureWebJobsStorage": ""})
    try:
        r.wait_for("Host started")
        assert ("Warning: Cannot find value named 'Storage' in local.settings.json that "
                "matches 'connection' property set on 'queueTrigger' in 'on_order'.") in r.output
        assert "Missing value for AzureWebJobsStorage in local.settings.json" in r.output
        assert "Function 'on_order' cannot listen: the connection setting 'Storage' is not set" \
            in r.output
    finally:
        assert r.stop() == 0


def test_a_sas_connection_string_works_the_same_way(azurite, storage_app):
    import datetime
    from azure.storage.blob import (AccountSasPermissions, ResourceTypes, Services,
                                    generate_account_sas)
    from storage_env import KEY
    sas = generate_account_sas(
        "devstoreaccount1", KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                              create=True, update=True, process=True),
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1),
        services=Services(blob=True, queue=True))
    cs = (f"BlobEndpoint=http://127.0.0.1:{azurite.ports['Blob']}/devstoreaccount1;"
          f"QueueEndpoint=http://127.0.0.1:{azurite.ports['Queue']}/devstoreaccount1;"
          f"SharedAccessSignature={sas}")
    r = Runner(storage_app, env={"Storage": cs})
    try:
        r.wait_for("Host started")
        queue(azurite, "orders").send_message(json.dumps({"id": "sas1", "item": "jam"}))
        text = wait_until("the blob output", lambda: blob_text(azurite, "results", "sas1.txt"))
        assert text.startswith("order sas1 item jam")
    finally:
        r.stop()


def test_a_blob_that_keeps_failing_goes_to_the_poison_queue(azurite, runner):
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    try:
        blobs.create_container("broken")
    except Exception:
        pass
    blobs.get_blob_client("broken", "bad.txt").upload_blob(b"?", overwrite=True)
    poison = queue(azurite, "webjobs-blobtrigger-poison", create=False)

    def poisoned():
        try:
            return [json.loads(m.content) for m in poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return None
    msgs = wait_until("the blob poison queue", poisoned)
    assert len(msgs) == 1
    assert msgs[0]["Type"] == "BlobTrigger" and msgs[0]["FunctionId"] == "Host.Functions.on_broken"
    assert (msgs[0]["ContainerName"], msgs[0]["BlobName"]) == ("broken", "bad.txt")
    assert runner.count("Executed 'Functions.on_broken' (Failed") == 5


def test_a_failing_output_binding_fails_the_invocation(runner):
    assert http(runner, "POST", "badrow", "")[0] == 500
    runner.wait_for("Executed 'Functions.bad_row' (Failed")
    runner.wait_for("The output binding 'row' (type table) failed: a table output must be a "
                    "JSON object or a list")


def test_admin_invocation_of_a_blob_trigger_reads_the_named_blob(azurite, runner):
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    try:
        blobs.create_container("uploads")
    except Exception:
        pass
    blobs.get_blob_client("uploads", "admin.txt").upload_blob(b"by hand", overwrite=True)
    seen = queue(azurite, "seen")

    def admin_messages(n):
        found = [m.content for m in seen.peek_messages(max_messages=32)
                 if m.content.startswith("uploads/admin.txt|")]
        return found if len(found) >= n else None
    # the listener fires for the new blob (other tests' blobs may fire too); then by hand
    wait_until("the listener's message", lambda: admin_messages(1))
    assert admin(runner, "on_upload", "uploads/admin.txt")[0] == 202
    assert wait_until("the admin's message", lambda: admin_messages(2)) == \
        ["uploads/admin.txt|7|by hand"] * 2
    assert admin(runner, "on_upload", "uploads/missing.txt")[0] == 202
    runner.wait_for("The blob trigger 'blob' failed: HTTP 404 BlobNotFound")
