"""The SFMC client's Data Extension definition calls: search, columns, create, add, folders.

The folders are read with a SOAP Retrieve of DataFolder objects; ``--test`` makes the same
kind of Retrieve to know that the SOAP API, which deletes rows, answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from target_sfmc import soap
from target_sfmc.client_base import ClientBase
from target_sfmc.errors import SfmcApiError

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

DATA_EXTENSION_SEARCH_PAGE_SIZE = 50

# The Data Extension folders: what a new Data Extension needs when no folder is set, and a
# Retrieve that changes nothing for ``--test`` to know that the SOAP API answers.
_FOLDER_RETRIEVE = (
    f'<RetrieveRequestMsg xmlns="{soap.PARTNER_API}">'
    "<RetrieveRequest><ObjectType>DataFolder</ObjectType>"
    "<Properties>ID</Properties><Properties>Name</Properties>"
    "<Properties>CustomerKey</Properties><Properties>ContentType</Properties>"
    "<Properties>ParentFolder.ID</Properties>"
    '<Filter xsi:type="SimpleFilterPart"><Property>ContentType</Property>'
    "<SimpleOperator>equals</SimpleOperator><Value>dataextension</Value></Filter>"
    "</RetrieveRequest></RetrieveRequestMsg>"
)
_RETRIEVED = frozenset({"OK", "MoreDataAvailable"})


def _folders_of(answer: ET.Element) -> list[dict[str, str]]:
    """The folders of a Retrieve answer of DataFolder objects.

    Args:
        answer: The answer's ``RetrieveResponseMsg``.

    Returns:
        One ``{"ID", "Name", "CustomerKey", "ContentType", "ParentFolder.ID"}`` per folder.
    """
    folders = []
    for result in answer:
        if soap.local_name(result.tag) != "Results":
            continue
        folder: dict[str, str] = {}
        for item in result:
            name = soap.local_name(item.tag)
            if name == "ParentFolder":
                for parent in item:
                    folder[f"ParentFolder.{soap.local_name(parent.tag)}"] = parent.text or ""
            else:
                folder[name] = (item.text or "").strip()
        folders.append(folder)
    return folders


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

    def retrieve_data_extension_folders(
        self, *, endpoint: str = "soap_retrieve"
    ) -> tuple[list[dict[str, str]], str]:
        """Retrieve the business unit's Data Extension folders (SOAP Retrieve of DataFolder).

        Args:
            endpoint: Name of the call in logs and stats.

        Returns:
            One ``{"ID", "Name", "CustomerKey", "ParentFolder.ID"}`` per folder, and the
            answer's ``OverallStatus``.

        Raises:
            SfmcApiError: When SFMC answers with a fault, an answer that is not SOAP, or a
                status other than OK.
        """
        answer = self.soap_call("Retrieve", _FOLDER_RETRIEVE, endpoint=endpoint)
        status = soap.child_text(answer, "OverallStatus")
        if status not in _RETRIEVED:
            raise SfmcApiError(
                endpoint=endpoint,
                status=200,
                error_code="soap",
                message=status or "the answer has no OverallStatus",
            )
        return _folders_of(answer), status

    def check_soap(self) -> str:
        """Call the SOAP API once with a Retrieve that changes nothing (``--test``).

        Returns:
            The answer's ``OverallStatus``.
        """
        return self.retrieve_data_extension_folders(endpoint="soap_check")[1]
