"""Phase 8, the release (spec/16_RELEASE.md); no model is loaded:

1. take every sealed run of this pipeline (the run graph's `consumes_pipeline`) and every
   run they depend on; re-hash each table and figure the report shows against its run's
   record (exit 3 on a change; recorded as this run's dependencies);
2. write the manifest (sha256 and size of every file of those runs), the byte-deterministic
   archive of exactly those files, and the self-contained HTML report.
"""

from __future__ import annotations

from canon import CANON
from critspec.orchestrate import PhaseContext
from critspec.release.archive import write_archive
from critspec.release.graph import release_closure
from critspec.release.manifest import manifest_document
from critspec.release.report import render_report, report_data, shown_artifacts
from critspec.validate import contracts

ARCHIVE = "release_archive"


def run(ctx: PhaseContext) -> None:
    runs_dir = ctx.inv.options.runs_dir
    released = release_closure(ctx.pipeline_runs(), runs_dir)
    for run, contract_id in shown_artifacts(released):
        ctx.run.consume(run, contract_id)
    manifest = manifest_document(released)
    ctx.run.write_json("release_manifest", manifest)
    files = [f["path"] for f in manifest["files"]]
    ctx.run.write_file(ARCHIVE, lambda path: write_archive(path, runs_dir, files))
    archive_name = contracts.entry(ARCHIVE)["basenames"][0]
    html = render_report(
        report_data(
            released,
            ctx.inv.spec,
            profile=ctx.config.pipeline.profile,
            max_rows=CANON.CONST.REPORT_TABLE_MAX_ROWS,
            archive_name=archive_name,
            verify_command=f"{CANON.CLI.ENTRYPOINT} {CANON.CLI.SUBCOMMAND.VERIFY_RELEASE} DIR",
        )
    )
    ctx.run.write_file("release_report", lambda path: path.write_bytes(html.encode()))
    ctx.run.summary.update(
        {
            "n_runs": len(released),
            "n_files": manifest["n_files"],
            "total_bytes": manifest["total_bytes"],
        }
    )
