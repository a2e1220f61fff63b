"""The account's folders (SOAP ``DataFolder`` objects) that Data Extensions can live in.

Folder ids differ from account to account; the emulator's are not the ones found in public
examples, so a client that assumes an id is caught. Like a real account, two data-extension
folders carry the customer key ``dataextension_default``: the root (parent 0) and Contact
Builder's "Audiences" folder, which comes first.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT_DATA_EXTENSION_FOLDER_ID = 7023
#: Folder content types a Data Extension may be created in.
DATA_EXTENSION_CONTENT_TYPES = frozenset({"dataextension", "shared_dataextension"})


@dataclass(frozen=True)
class Folder:
    """One folder.

    Attributes:
        id: Folder (category) id.
        name: Display name.
        customer_key: External key.
        content_type: What the folder holds (``dataextension``, ``shared_dataextension``, ...).
        parent_id: Parent folder id; 0 for a top-level folder.
        is_editable: Whether users may rename or move it.
        allow_children: Whether it may hold subfolders.
    """

    id: int
    name: str
    customer_key: str
    content_type: str
    parent_id: int
    is_editable: bool = True
    allow_children: bool = True


FOLDERS: tuple[Folder, ...] = (
    Folder(7031, "Audiences", "dataextension_default", "dataextension", 7023, is_editable=False),
    Folder(
        ROOT_DATA_EXTENSION_FOLDER_ID,
        "Data Extensions",
        "dataextension_default",
        "dataextension",
        0,
        is_editable=False,
    ),
    Folder(7024, "Einstein", "einstein_dataextensions", "dataextension", 7023),
    Folder(7040, "Loaded by pipelines", "pipelines", "dataextension", 7023),
    Folder(89344, "Shared Items", "shared_data", "shared_data", 0, is_editable=False),
    Folder(
        89345,
        "Shared Data Extensions",
        "shared_dataextension_default",
        "shared_dataextension",
        89344,
        is_editable=False,
    ),
)


def data_extension_folder(folder_id: int) -> Folder | None:
    """Find a folder that Data Extensions can be created in.

    Args:
        folder_id: Folder (category) id.

    Returns:
        The folder, or None if there is none with that id or it holds something else.
    """
    for folder in FOLDERS:
        if folder.id == folder_id and folder.content_type in DATA_EXTENSION_CONTENT_TYPES:
            return folder
    return None
