"""Build hook: compile the gettext catalogs (``locale/*/LC_MESSAGES/liaisonbot.po``) into
``.mo`` files inside the built package, with Babel. Everything else is in pyproject.toml.

An editable install (``pip install -e .``) keeps the sources in place: there the bot compiles
the ``.po`` in memory on first use (``liaisonbot.service.i18n.translator``), so both paths
speak every language.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        try:
            from babel.messages.mofile import write_mo
            from babel.messages.pofile import read_po
        except ImportError:  # no Babel at build time: the runtime compiles the .po instead
            return
        for po in Path("src/liaisonbot/locale").glob("*/LC_MESSAGES/*.po"):
            target = Path(self.build_lib) / po.relative_to("src").with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as fp:
                catalog = read_po(fp, locale=po.parent.parent.name)
            with target.open("wb") as out:
                write_mo(out, catalog)


setup(cmdclass={"build_py": BuildWithCatalogs})
