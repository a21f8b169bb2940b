"""composer/'s modules import each other without circles, the imports inside functions included:
a circle hidden in a function still ties two modules into one concept and breaks the layers."""

from __future__ import annotations

import grimp

# Imports under `if TYPE_CHECKING:` never run: type names may point either way.
GRAPH = grimp.build_graph("composer", exclude_type_checking_imports=True)


def _circles() -> list[str]:
    found = []
    for importer in sorted(GRAPH.modules):
        for imported in sorted(GRAPH.find_modules_directly_imported_by(importer)):
            back = GRAPH.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                found.append(" -> ".join((importer, *back)))
    return found


def test_no_module_imports_itself_back_through_others() -> None:
    assert _circles() == []


def test_the_graph_sees_imports_inside_functions() -> None:
    # cli/bench.py imports labs/bench inside its commands (help stays fast); the graph must hold it
    assert "composer.labs.bench" in GRAPH.find_modules_directly_imported_by("composer.cli.bench")
