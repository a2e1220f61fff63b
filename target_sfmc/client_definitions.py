"""The SFMC client's Data Extension definition calls: search, columns, create, add, folders.

The folders are read with a SOAP Retrieve of DataFolder objects; ``--test`` makes the same
kind of Retrieve to know that the SOAP API, which deletes rows, answers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from target_sfmc import soap
from target_sfmc.client_base import ClientBase
from target_sfmc.errors import SfmcApiError

DATA_EXTENSION_SEARCH_PAGE_SIZE = 50

# SOAP Retrieve of the Data Extension folders; the token goes in the header (%s).
_FOLDER_RETRIEVE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<s:Header><fueloauth xmlns="http://exacttarget.com">%s</fueloauth></s:Header>'
    '<s:Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">'
    "<RetrieveRequest><ObjectType>DataFolder</ObjectType>"
    "<Properties>ID</Properties><Properties>Name</Properties>"
    "<Properties>CustomerKey</Properties><Properties>ContentType</Properties>"
    "<Properties>ParentFolder.ID</Properties>"
    '<Filter xsi:type="SimpleFilterPart"><Property>ContentType</Property>'
    "<SimpleOperator>equals</SimpleOperator><Value>dataextension</Value></Filter>"
    "</RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"
)

# A Retrieve that changes nothing and that any package able to delete rows may make: the IDs of
# the Data Extension folders.
_SOAP_CHECK = (
    f'<RetrieveRequestMsg xmlns="{soap.PARTNER_API}">'
    "<RetrieveRequest><ObjectType>DataFolder</ObjectType><Properties>ID</Properties>"
    '<Filter xsi:type="SimpleFilterPart"><Property>ContentType</Property>'
    "<SimpleOperator>equals</SimpleOperator><Value>dataextension</Value></Filter>"
    "</RetrieveRequest></RetrieveRequestMsg>"
)
_RETRIEVED = frozenset({"OK", "MoreDataAvailable"})


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _folders_from_soap(text: str) -> tuple[list[dict[str, str]], str]:
    """Read a SOAP Retrieve answer of DataFolder objects.

    Args:
        text: The answer's XML.

    Returns:
        The folders (``ID``, ``Name``, ``CustomerKey``, ``ContentType``, ``ParentFolder.ID``)
        and the ``OverallStatus`` (for a SOAP fault: its fault string; "" when unreadable).
    """
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # never expand entities from an answer
        return [], ""
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs refused above
    except ET.ParseError:
        return [], ""
    status, folders = "", []
    for element in root.iter():
        name = _local_name(element.tag)
        if name == "OverallStatus":
            status = (element.text or "").strip()
        elif name == "faultstring" or (name == "Text" and not status):
            status = f"SOAP fault: {(element.text or '').strip()}"
        elif name == "Results":
            folder: dict[str, str] = {}
            for child in element:
                child_name = _local_name(child.tag)
                if child_name == "ParentFolder":
                    for parent in child:
                        folder[f"ParentFolder.{_local_name(parent.tag)}"] = parent.text or ""
                else:
                    folder[child_name] = (child.text or "").strip()
            folders.append(folder)
    return folders, status


class DataExtensionCalls(ClientBase):
    """Data Extension definitions and folders."""

    def search_data_extensions(self, text: str, page: int = 1) -> dict[str, Any]:
        """Search Data Extensions by part of their name or external key.

        Args:
            text: The text to look for (SFMC requires one; wildcards are refused).
            page: Page of the answer, from 1.

        Returns:
            ``{"count", "page", "pageSize", "items": [{"id", "key", "name", …}]}``.
        """
        answer = self.call(
            "GET",
            f"/data/v1/customobjects?$search={quote(text, safe='')}"
            f"&$page={page}&$pageSize={DATA_EXTENSION_SEARCH_PAGE_SIZE}",
            endpoint="customobjects_search",
        )
        return answer if isinstance(answer, dict) else {}

    def data_extension_fields(self, object_id: str) -> list[dict[str, Any]]:
        """Read the columns of a Data Extension.

        Args:
            object_id: The Data Extension's ObjectID (SFMC refuses an external key here).

        Returns:
            SFMC's ``fields`` items.
        """
        answer = self.call(
            "GET",
            f"/data/v1/customobjects/{quote(object_id, safe='')}/fields",
            endpoint="customobject_fields",
        )
        fields = answer.get("fields") if isinstance(answer, dict) else None
        return [item for item in fields if isinstance(item, dict)] if fields else []

    def create_data_extension(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a Data Extension.

        Args:
            definition: ``{"name", "key", "categoryId", "isSendable", "fields": [...], …}``.

        Returns:
            The created Data Extension as SFMC shows it (``id``, ``key``, ``fields``, …).
        """
        answer = self.call(
            "POST", "/data/v1/customobjects", endpoint="customobjects_create", payload=definition
        )
        return answer if isinstance(answer, dict) else {}

    def add_data_extension_fields(self, object_id: str, fields: list[dict[str, Any]]) -> None:
        """Ask SFMC to add columns to a Data Extension (applied asynchronously).

        Args:
            object_id: The Data Extension's ObjectID.
            fields: The new columns, in the create request's field form.
        """
        self.call(
            "POST",
            f"/data/v1/customobjectsasync/{quote(object_id, safe='')}/fields",
            endpoint="customobject_add_fields",
            payload={"fields": fields},
        )

    def retrieve_data_extension_folders(self) -> list[dict[str, str]]:
        """Retrieve the business unit's Data Extension folders (SOAP Retrieve of DataFolder).

        Returns:
            One ``{"ID", "Name", "CustomerKey", "ParentFolder.ID"}`` per folder.

        Raises:
            SfmcApiError: When SFMC answers with a fault or a status other than OK.
        """
        token = self.tokens.get()
        url = self.settings.soap_base_url(token.soap_instance_url) + "/Service.asmx"
        response = self.transport.send(
            "POST",
            url,
            endpoint="soap_retrieve",
            body=(_FOLDER_RETRIEVE % escape(token.value)).encode(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "Retrieve"},
        )
        folders, status = _folders_from_soap(response.text)
        if response.status_code == 200 and status in {"OK", "MoreDataAvailable"}:  # noqa: PLR2004
            return folders
        raise SfmcApiError(
            endpoint="soap_retrieve",
            status=response.status_code,
            error_code="soap",
            message=status or "SFMC's answer could not be read",
        )

    def check_soap(self) -> str:
        """Call the SOAP API once with a Retrieve that changes nothing (``--test``).

        Returns:
            The answer's ``OverallStatus``.

        Raises:
            SfmcApiError: When SFMC answers with a fault, an answer that is not SOAP, or a
                status other than OK.
        """
        answer = self.soap_call("Retrieve", _SOAP_CHECK, endpoint="soap_check")
        status = soap.child_text(answer, "OverallStatus")
        if status in _RETRIEVED:
            return status
        raise SfmcApiError(
            endpoint="soap_check",
            status=200,
            error_code="soap",
            message=status or "the answer has no OverallStatus",
        )
