"""The WSGI application: routing, auth, the API endpoints, and the loopback-only ``/_sim/`` control API."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import re
import time
from typing import Any

from werkzeug.wrappers import Request, Response

from cwsim import audittrail, callbacks, errors, faults, query, resources
from cwsim.errors import ApiError
from cwsim.pdf import invoice_pdf
from cwsim.serialize import render
from cwsim.state import RequestRecord, SimState
from cwsim.store import EagerTable

LEGACY_CODEBASE = "v4_6_release"
# Records a DELETE removes (204, and a "deleted" callback for the types that have one). A deleted invoice's lines
# keep their invoice reference here; what ConnectWise does with them is not in the notes.
DELETABLE = frozenset({"invoices", "products", "timeEntries", "expenseEntries"})
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
JSON_TYPE = "application/json; charset=utf-8"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = Response(payload, status=status, content_type=JSON_TYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


class SimApp:
    """WSGI callable serving one ``SimState``."""

    def __init__(self, state: SimState):
        self.state = state
        self._request_ids = itertools.count(1)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        arrived, started = time.time(), time.perf_counter()
        path = re.sub("/{2,}", "/", request.path)
        control = path.startswith("/_sim/") or path == "/_sim"
        try:
            response = self._control(request, path) if control else self._dispatch(request, path)
        except ApiError as exc:
            response = _json(exc.body, exc.status, exc.headers)
        if not control:
            response.headers["x-cw-request-id"] = f"cwsim-{next(self._request_ids):08d}"
            response.headers["x-server-name"] = "cwsim"
            response.headers.setdefault("Cache-Control", "no-cache")
            if response.mimetype == "application/json":
                response.set_data(faults.maybe_truncate(self.state, response.get_data()))
            self.state.record(
                RequestRecord(
                    request.method,
                    path,
                    request.query_string.decode("latin-1"),
                    response.status_code,
                    arrived,
                    (time.perf_counter() - started) * 1000.0,
                )
            )
        body = response(environ, start_response)
        return body if control else faults.maybe_trickle(self.state, body)

    # --- API ----------------------------------------------------------------------------------------
    def _dispatch(self, request: Request, path: str) -> Response:
        segments = [s for s in path.split("/") if s]
        if len(segments) == 3 and [s.lower() for s in segments[:2]] == ["login", "companyinfo"]:
            return self._company_info(request, segments[2])
        codebases = {LEGACY_CODEBASE, self.state.codebase.rstrip("/")}
        if len(segments) == 4 and segments[0] in codebases and "/".join(segments[1:]).lower() == callbacks.KEY_PATH:
            return self._callback_key(request)
        if len(segments) < 3 or segments[0] not in codebases or segments[1:3] != ["apis", "3.0"]:
            raise errors.endpoint_missing()
        faults.before_request(self.state)
        self._authenticate(request)
        api_base = f"{request.host_url.rstrip('/')}/{segments[0]}/apis/3.0"
        rest = segments[3:]
        self._check_permission(rest, request.method)
        if [s.lower() for s in rest] == ["system", "info"]:
            return self._only(request, "GET") or _json(self._system_info())
        if [s.lower() for s in rest[:2]] == ["system", "audittrail"]:
            body, headers = audittrail.serve(self.state.data, self.state.lock, request, rest[2:])
            return _json(body, headers=headers)
        matched = resources.match(rest)
        if matched is None:
            raise errors.endpoint_missing()
        resource, parent_id, tail = matched
        return self._resource(request, resource, parent_id, tail, api_base)

    def _authenticate(self, request: Request) -> None:
        cfg = self.state.config
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            decoded = ""
        user, _, secret = decoded.partition(":")
        company, _, public = user.partition("+")
        if (
            cfg.revoked
            or scheme.lower() != "basic"
            or company.lower() != cfg.company_id.lower()
            or public != cfg.public_key
            or secret != cfg.private_key
        ):
            raise errors.not_authenticated()
        if cfg.require_client_id and not request.headers.get("clientId", "").strip():
            # Integrators report a 400 mentioning clientId for a missing/unregistered clientId.
            raise ApiError(400, "ConnectWiseApi", "A valid clientId header is required.")

    def _check_permission(self, rest: list[str], method: str = "GET") -> None:
        """403 under a path the API member's security role lacks (the ``forbidden`` knob), or may only read
        (``forbidden_writes``: ConnectWise's security roles grant inquire and edit apart)."""
        path = "/".join(rest).lower()
        denied = self.state.config.forbidden.lower().split()
        if method in ("PATCH", "POST", "PUT", "DELETE"):
            denied += self.state.config.forbidden_writes.lower().split()
        for prefix in denied:
            if path == prefix.strip("/") or path.startswith(prefix.strip("/") + "/"):
                raise errors.forbidden()

    @staticmethod
    def _only(request: Request, *methods: str) -> Response | None:
        if request.method not in methods:
            raise errors.method_not_allowed(request.method)
        return None

    def _company_info(self, request: Request, company_id: str) -> Response:
        self._only(request, "GET")
        cfg = self.state.config
        if company_id.lower() != cfg.company_id.lower():
            raise errors.not_found("Company", company_id)
        version = self.state.codebase.rstrip("/").replace("_", ".")
        return _json(
            {
                "CompanyName": "BetterSim IT Services",
                "Codebase": self.state.codebase,
                "VersionCode": version,
                "VersionNumber": "v4.6.10333",
                "CompanyID": cfg.company_id,
                "IsCloud": True,
                "SiteUrl": request.host,
            }
        )

    @staticmethod
    def _system_info() -> dict:
        return {
            "version": "v2025.1.10333",
            "isCloud": True,
            "serverTimeZone": "Central Standard Time",
            "licenseBits": [
                {"name": "Finance", "activeFlag": True},
                {"name": "Procurement", "activeFlag": True},
                {"name": "Project", "activeFlag": True},
                {"name": "Service", "activeFlag": True},
            ],
            "cloudRegion": "NA",
            "maxWorkFlowRecordsAllowed": 1000,
        }

    def _resource(
        self,
        request: Request,
        resource: resources.Resource,
        parent_id: int | None,
        tail: list[str],
        api_base: str,
    ) -> Response:
        data = self.state.data
        resources.check_parent(data, resource, parent_id)
        method = request.method
        if not tail:
            if method == "POST" and resource.table == "callbacks":
                return self._create_callback(request, api_base)
            self._only(request, "GET")
            return self._list(request, resource, parent_id, api_base)
        if tail == ["count"]:
            self._only(request, "GET")
            return _json(
                {"count": len(resources.select(data, resource, parent_id, request.args.get("conditions")))}
            )
        if not tail[0].isdigit():
            raise errors.bad_request(f"The value '{tail[0]}' is not valid for id.")
        record_id = int(tail[0])
        if tail[1:] == ["pdf"] and resource.table == "invoices":
            self._only(request, "GET")
            return self._pdf(resources.get_one(data, resource, parent_id, record_id))
        if len(tail) > 1:
            raise errors.endpoint_missing()
        if method == "GET":
            record = resources.get_one(data, resource, parent_id, record_id)
            return _json(self._shape(request, record, api_base))
        if method == "PATCH" and resource.patchable:
            if self.state.take("write_refusal_next"):
                raise errors.write_refused(self.state.config.write_refusal_status)
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                raise errors.bad_request("The request body is not valid JSON.") from None
            with self.state.lock:
                before = resources.get_one(data, resource, parent_id, record_id)
                record = resources.apply_patch(data, resource, parent_id, record_id, body)
                audittrail.record_patch(data, resource.table, before, record, resources.API_MEMBER)
            rendered = render(record, api_base)
            callbacks.notify(self.state, resource.table, record, "updated", rendered, request.host_url)
            return _json(rendered)
        if method == "DELETE" and resource.table == "callbacks":
            resources.get_one(data, resource, parent_id, record_id)
            del data[resource.table].records[record_id]
            return Response(status=204)
        if method == "DELETE" and resource.table in DELETABLE:
            with self.state.lock:
                record = resources.get_one(data, resource, parent_id, record_id)
                data[resource.table].remove(record_id)
                audittrail.record_delete(data, resource.table, record, resources.API_MEMBER)
            callbacks.notify(self.state, resource.table, record, "deleted", render(record, api_base), request.host_url)
            return Response(status=204)
        raise errors.method_not_allowed(method)

    @staticmethod
    def _shape(request: Request, record: dict, api_base: str) -> Any:
        fields = request.args.get("fields")
        if fields:
            record = query.project(record, query.parse_fields(fields))
        return render(record, api_base)

    def _list(
        self, request: Request, resource: resources.Resource, parent_id: int | None, api_base: str
    ) -> Response:
        args = request.args
        data = self.state.data
        forward = request.headers.get("pagination-type", "").strip().lower() == "forward-only"
        try:
            if forward and args.get("orderBy"):
                raise query.QueryError("orderBy is not supported with forward-only pagination.")
            page, size = query.page_params(args)
            page_id = query.parse_int("pageId", args.get("pageId"), 0, minimum=0) if forward else 0
            order = None if forward or not args.get("orderBy") else query.parse_order_by(args["orderBy"])
        except query.QueryError as exc:
            raise errors.bad_request(str(exc)) from None
        conditions = args.get("conditions")
        if conditions or order:
            after_page_id = (lambda r: r["id"] > page_id) if page_id else None
            records: list[Any] = resources.select(data, resource, parent_id, conditions, extra=after_page_id)
            if order:
                records = query.sort_records(records, order)
            fetch = lambda r: r  # noqa: E731
        else:
            # Unfiltered id-ordered pages: slice ids first so lazily built line items are built per page only.
            records = [i for i in data[resource.table].ids(parent_id) if i > page_id]
            fetch = lambda i: data[resource.table].get(i)  # noqa: E731
        url = request.host_url.rstrip("/") + re.sub("/{2,}", "/", request.path)
        qs = request.query_string.decode("latin-1")
        headers: dict[str, str] = {}
        if forward:
            chunk = [fetch(r) for r in records[:size]]
            more = len(records) > size
            headers["Link"] = query.forward_link(url, qs, chunk[-1]["id"] if chunk and more else None)
        else:
            chunk = [fetch(r) for r in records[(page - 1) * size : page * size]]
            link = query.link_header(url, qs, page, size, len(records))
            if link:
                headers["Link"] = link
        return _json([self._shape(request, r, api_base) for r in chunk], headers=headers)

    def _pdf(self, invoice: dict) -> Response:
        currency = invoice["currency"]
        lines = [
            f"INVOICE {invoice['invoiceNumber']}",
            invoice["company"]["name"],
            f"Date: {invoice['date'][:10]}  Due: {invoice['dueDate'][:10]}",
            f"Subtotal: {invoice['subtotal']:.{currency['numberOfDecimals']}f} {currency['currencyCode']}",
            f"Tax: {invoice['salesTax']:.{currency['numberOfDecimals']}f}",
            f"Total: {invoice['total']:.{currency['numberOfDecimals']}f}",
            f"Balance: {invoice['balance']:.{currency['numberOfDecimals']}f}",
        ]
        response = Response(invoice_pdf(lines), content_type="application/pdf")
        response.headers["Content-Disposition"] = f'inline; filename="{invoice["invoiceNumber"]}.pdf"'
        return response

    def _callback_key(self, request: Request) -> Response:
        """The signing key a delivery's ``Metadata.key_url`` names (sent with a clientId header, no Basic auth)."""
        self._only(request, "GET")
        if self.state.config.require_client_id and not request.headers.get("clientId", "").strip():
            raise ApiError(400, "ConnectWiseApi", "A valid clientId header is required.")
        answer = callbacks.key_answer(self.state, request.args.get("companyName", ""), request.args.get("id", ""))
        if answer is None:
            raise errors.not_found("CallbackKey", request.args.get("id", ""))
        return _json(answer)

    def _create_callback(self, request: Request, api_base: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        for field in ("url", "objectId", "type", "level"):
            if body.get(field) in (None, ""):
                raise errors.invalid_object(
                    "callbackEntry", field, f"The {field} field is required.", code="MissingRequiredField"
                )
        if not str(body["url"]).startswith(("http://", "https://")):
            raise errors.invalid_object("callbackEntry", "url", "Invalid URL")
        refused = callbacks.entry_error(body)
        if refused is not None:
            raise errors.invalid_object("callbackEntry", refused[0], refused[1], code="InvalidObject")
        table = self.state.data["callbacks"]
        assert isinstance(table, EagerTable)
        with self.state.lock:
            record_id = 26550 + self.state.callback_seq
            self.state.callback_seq += 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            record = {
                "id": record_id,
                "description": body.get("description", ""),
                "url": body["url"],
                "objectId": int(body["objectId"]),
                "type": body["type"],
                "level": body["level"],
                "memberId": 141,
                "payloadVersion": body.get("payloadVersion", "3.0.0"),
                "inactiveFlag": bool(body.get("inactiveFlag", False)),
                "isSoapCallbackFlag": False,
                "isSelfSuppressedFlag": bool(body.get("isSelfSuppressedFlag", False)),
                "connectWiseID": f"5a6f0000-0000-4000-8000-{record_id:012d}",
                "_info": {"lastUpdated": stamp, "updatedBy": resources.API_MEMBER},
            }
            table.add(record)
        return _json(render(record, api_base), status=201)

    # --- control API ---------------------------------------------------------------------------------
    def _control(self, request: Request, path: str) -> Response:
        if request.remote_addr not in LOOPBACK:
            return _json({"code": "Forbidden", "message": "The control API answers on loopback only."}, 403)
        state = self.state
        name = path[len("/_sim/") :].strip("/")
        if name == "config" and request.method == "GET":
            return _json(_config_dict(state))
        if name == "config" and request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                return _json({"code": "InvalidObject", "message": "Send a JSON object of knobs."}, 400)
            try:
                state.configure(**body)
            except (KeyError, TypeError, ValueError) as exc:
                return _json({"code": "InvalidObject", "message": f"Unknown or invalid knob: {exc}"}, 400)
            return _json(_config_dict(state))
        if name == "requests" and request.method == "GET":
            entries = [r.as_dict() for r in state.requests(request.args.get("path"))]
            return _json({"count": len(entries), "requests": entries})
        if name == "reset" and request.method == "POST":
            body = request.get_json(silent=True) or {}
            state.reset(keep_config=bool(body.get("keep_config", False)))
            return _json(_config_dict(state))
        if name == "deliveries" and request.method == "GET":
            with state.lock:
                sent = [d.as_dict() for d in state.deliveries]
            return _json({"count": len(sent), "deliveries": sent})
        if name == "cases" and request.method == "GET":
            return _json(state.data.cases)
        return _json(
            {"code": "NotFound", "message": f"No control endpoint {request.method} /_sim/{name}"}, 404
        )


def _config_dict(state: SimState) -> dict:
    out = dataclasses.asdict(state.config)
    out["codebase"] = state.codebase
    return out
