import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from kequn.security.actors import add_operator_argument, get_operator
from kequn.segments import services
from kequn.segments.models import Segment
from kequn.segments.personas_service import discover_personas
from kequn.segments.sqlgen import to_paramstyle


class Command(BaseCommand):
    help = "Segments: refresh, count a rule, show its SQL, tag in bulk, find personas."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        refresh = sub.add_parser("refresh", help="re-evaluate dynamic segments and tag rules")
        add_operator_argument(refresh)
        count = sub.add_parser("count", help="count the customers matching a rule (JSON)")
        count.add_argument("rule", help="rule JSON, or @file.json")
        sql = sub.add_parser(
            "sql",
            help="print the SQL of a rule for the analytics engine (? placeholders), "
            "then its parameters as a JSON list",
        )
        sql.add_argument("rule", help="rule JSON, or @file.json")
        tag = sub.add_parser("tag", help="tag a segment's members or the customers in a file")
        add_operator_argument(tag)
        tag.add_argument("--tag", required=True, help="tag name")
        tag.add_argument("--group", help="tag group name")
        tag.add_argument("--segment", type=int, help="segment id")
        tag.add_argument("--file", help="CSV/text file, customer ids in the first column")
        tag.add_argument(
            "--external-system",
            help="the file holds external ids of this system ('external_ref' for the customer field)",
        )
        personas = sub.add_parser("personas", help="cluster customers into described personas")
        personas.add_argument("--k", type=int, help="number of clusters (default: by silhouette)")
        personas.add_argument("--save", action="store_true", help="save each as a static segment")
        add_operator_argument(personas)

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"do_{action}")(options)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None

    @staticmethod
    def _rule(text: str) -> dict:
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"cannot read {text[1:]}: {exc.strerror}") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"rule is not valid JSON: {exc}") from None

    def do_refresh(self, options):
        by = get_operator(options["by"])
        with translation.override("en"):  # the command line speaks English
            done = services.refresh_all(by=by)
        self.stdout.write(
            f"Refreshed {done['segments']} segments and {done['tag_rules']} tag rules"
        )
        if done["disabled"]:
            # Everything else has been refreshed; a non-zero exit still tells the scheduler.
            for line in done["disabled"]:
                self.stderr.write(f"disabled: {line}")
            raise SystemExit(1)

    def do_count(self, options):
        self.stdout.write(str(services.count_rule(self._rule(options["rule"]))))

    def do_sql(self, options):
        rule = services.check_rule(self._rule(options["rule"]))
        sql, params = services.compile_member_sql(rule)
        # DuckDB and the sqlite3 module take "?"; the values stay apart from the text.
        self.stdout.write(to_paramstyle(sql, "qmark"))
        self.stdout.write(json.dumps(params, ensure_ascii=False))

    def do_tag(self, options):
        by = get_operator(options["by"])
        if bool(options["segment"]) == bool(options["file"]):
            raise CommandError("give either --segment ID or --file FILE")
        tag = services.get_or_create_tag(options["tag"], options["group"], by=by)
        if options["segment"]:
            segment = Segment.objects.filter(pk=options["segment"]).first()
            if segment is None:
                raise CommandError(f"segment {options['segment']} does not exist")
            added = services.tag_segment_members(segment, tag, by=by)
            self.stdout.write(f"Tagged {added:,} more customers with {tag}")
            return
        try:
            text = Path(options["file"]).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {options['file']}: {exc}") from None
        system = options["external_system"]
        ids, unknown = services.resolve_customer_ids(
            services.read_id_values(text), "" if system == "external_ref" else system, by=by
        )
        added = services.tag_customer_ids(tag, ids, by=by)
        self.stdout.write(f"Tagged {added:,} more customers with {tag}")
        if unknown:
            self.stderr.write(f"{len(unknown):,} ids not found, e.g. {', '.join(unknown[:5])}")

    def do_personas(self, options):
        by = get_operator(options["by"])
        personas = discover_personas(k=options["k"], by=by)
        if not personas:
            raise CommandError("too few customers with purchases to find personas")
        self.stdout.write(f"k = {personas[0].k} (silhouette {personas[0].silhouette:.3f})")
        for p in personas:
            line = f"#{p.label} {p.size:>7,}  {p.description_en} / {p.description_zh}"
            if options["save"]:
                line += f"  → segment {services.save_persona_as_segment(p, by=by).pk}"
            self.stdout.write(line)
