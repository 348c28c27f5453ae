"""Back office for segments: rule editor with a live count, size chart, history, export, tags."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from kequn.customers.access import CustomerScopedAdminMixin
from kequn.customers.admin import search_customers
from kequn.customers.models import Customer, Tag, TagGroup
from kequn.scoring.models import LifecycleStage
from kequn.security.masking import EMAIL, PHONE, get_unmasked_groups, mask_row
from kequn.security.permissions import (
    can_view_all_customers,
    has_permission,
    record_personal_view,
    require_permission,
    scope_customers,
)
from kequn.segments import services
from kequn.segments.access import check_rule_access, count_visible_members
from kequn.segments.builder import (
    LOOKUPS,
    SAMPLE_SIZE,
    convert_filters_to_rule,
    describe_sample,
)
from kequn.segments.catalogue import describe_catalogue
from kequn.segments.charts import render_size_chart
from kequn.segments.export import iter_customer_rows, make_export_response
from kequn.segments.models import (
    MembershipChange,
    Persona,
    Segment,
    SegmentMember,
    SegmentSize,
    TagRule,
    default_rule,
)

TAG_PERMISSION = "customers.add_customertag"


class RuleField(forms.JSONField):
    widget = forms.Textarea(attrs={"rows": 14, "class": "font-mono", "spellcheck": "false"})


class SegmentForm(forms.ModelForm):
    # A new segment starts from an empty group, never from "null".
    rules = RuleField(label=_("rules"), initial=default_rule)
    user = None  # set per request by SegmentAdmin.get_form: whose rights the rule is checked by

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "rules"]

    def clean(self):
        data = super().clean()
        rules = data.get("rules")
        dynamic = data.get("kind") == Segment.Kind.DYNAMIC
        if dynamic and isinstance(rules, dict) and rules.get("conditions") == []:
            self.add_error("rules", gettext("Add at least one condition."))
            return data
        if rules is not None and (dynamic or (isinstance(rules, dict) and rules.get("conditions"))):
            try:
                services.check_rule(rules, self.instance.pk)
                check_rule_access(self.user, rules)
            except ValidationError as exc:
                self.add_error("rules", exc)
            except PermissionDenied as exc:
                self.add_error("rules", str(exc))
        return data


def _make_visible_members(user):
    """Return a column showing how many of a segment's members this user may see."""

    @display(description=_("members"))
    def visible_members(obj: Segment) -> int:
        return count_visible_members(user, obj)

    return visible_members


@admin.register(Segment)
class SegmentAdmin(ModelAdmin):
    form = SegmentForm
    change_form_template = "segments/admin/segment_change_form.html"
    list_display = ["name", "kind", "member_count", "refreshed_at", "status"]
    list_filter = ["kind"]
    search_fields = ["name"]
    readonly_fields = ["member_count", "refreshed_at"]
    actions = ["refresh_selected", "export_csv", "export_xlsx", "tag_selected"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Build the form class for this request, so rules are checked against the user's rights."""
        form = super().get_form(request, obj, change, **kwargs)
        form.user = request.user  # a class made for this request by modelform_factory
        return form

    def get_list_display(self, request):
        """Show a rep limited to own accounts how many of their customers are members."""
        shown = super().get_list_display(request)
        if can_view_all_customers(request.user):
            return shown
        visible = _make_visible_members(request.user)
        return [visible if f == "member_count" else f for f in shown]

    def get_readonly_fields(self, request, obj=None):
        """Show the member count scoped to the user's accounts, as in the list."""
        fields = super().get_readonly_fields(request, obj)
        if can_view_all_customers(request.user):
            return fields
        visible = _make_visible_members(request.user)
        return [visible if f == "member_count" else f for f in fields]

    def get_urls(self):
        own = [
            path(
                "count/", self.admin_site.admin_view(self.count_view), name="segments_segment_count"
            ),
            path(
                "<int:segment_id>/export/<str:fmt>/",
                self.admin_site.admin_view(self.export_view),
                name="segments_segment_export",
            ),
            path(
                "lookup/",
                self.admin_site.admin_view(self.lookup_view),
                name="segments_segment_lookup",
            ),
            path(
                "from-customers/",
                self.admin_site.admin_view(self.from_customers_view),
                name="segments_segment_from_customers",
            ),
            path(
                "<int:segment_id>/members/",
                self.admin_site.admin_view(self.members_view),
                name="segments_segment_members",
            ),
            path(
                "tag-customers/",
                self.admin_site.admin_view(self.tag_view),
                name="segments_tag_customers",
            ),
        ]
        return own + super().get_urls()

    def count_view(self, request: HttpRequest) -> JsonResponse:
        """Answer the live count of the rule being edited."""
        if request.method != "POST":
            return JsonResponse({"errors": [gettext("POST a rule")]}, status=405)
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError(gettext("send a JSON object with 'rules'"))
            segment_id = body.get("segment_id")
            rules = services.check_rule(body.get("rules"), int(segment_id) if segment_id else None)
            check_rule_access(request.user, rules)
            if can_view_all_customers(request.user):
                count, sample = services.count_and_sample_members(rules, SAMPLE_SIZE)
            else:  # a sales rep counts only the accounts they may see
                members = scope_customers(request.user, services.select_rule_members(rules))
                count = members.count()
                sample = list(members.order_by("-id").values_list("pk", flat=True)[:SAMPLE_SIZE])
        except (ValueError, TypeError, RecursionError) as exc:
            return JsonResponse({"errors": [str(exc)]}, status=400)
        except ValidationError as exc:
            return JsonResponse({"errors": exc.messages}, status=200)
        except PermissionDenied as exc:
            return JsonResponse({"errors": [str(exc)]}, status=403)
        return JsonResponse({"count": count, "sample": describe_sample(sample)})

    def lookup_view(self, request: HttpRequest) -> JsonResponse:
        """Answer the picker of the rule builder: tags, categories, products, events, segments."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        kind = request.GET.get("kind", "")
        if kind not in LOOKUPS:
            return JsonResponse(
                {"errors": [gettext("kind must be one of %s") % ", ".join(LOOKUPS)]}, status=400
            )
        query = request.GET.get("q", "").strip()[:100]
        values = [v for v in request.GET.get("values", "").split(",") if v][:50]
        return JsonResponse({"results": LOOKUPS[kind](query, values)})

    def from_customers_view(self, request: HttpRequest):
        """Open the add page with a rule made from the customer list's filters and search."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        changelist = reverse("admin:customers_customer_changelist")
        query = request.GET.urlencode()
        try:
            rule = convert_filters_to_rule(request.GET)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return HttpResponseRedirect(f"{changelist}?{query}" if query else changelist)
        params = urlencode({"rules": json.dumps(rule, ensure_ascii=False)})
        return HttpResponseRedirect(f"{reverse('admin:segments_segment_add')}?{params}")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        """Read a prefilled rule (from "save as segment") as JSON, not as text."""
        initial = super().get_changeform_initial_data(request)
        if "rules" in request.GET:
            try:
                rules = json.loads(request.GET["rules"])
            except ValueError:
                rules = None
            initial["rules"] = rules if isinstance(rules, dict) else default_rule()
        return initial

    def members_view(self, request: HttpRequest, segment_id: int):
        """List every member the user may see, paged and searchable, masked by role."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        segment = get_object_or_404(Segment, pk=segment_id)
        term = request.GET.get("q", "").strip()[:200]
        members = scope_customers(
            request.user, Customer.objects.filter(segment_memberships__segment=segment)
        )
        if term:
            members = search_customers(members, term)
        paginator = Paginator(members.order_by("-id").values_list("pk", flat=True), 50)
        page = paginator.get_page(request.GET.get("p"))
        groups = get_unmasked_groups(request.user)
        ids = list(page.object_list)
        rows = [
            mask_row(request.user, r, groups)
            for r in iter_customer_rows(Customer.objects.filter(pk__in=ids))
        ]
        rows.sort(key=lambda r: -r["id"])
        shown = {PHONE, EMAIL} & groups
        record_personal_view(request.user, ids, via="segment-members", groups=frozenset(shown))
        since = dict(
            SegmentMember.objects.filter(segment=segment, customer_id__in=ids).values_list(
                "customer_id", "added_at"
            )
        )
        stages = dict(LifecycleStage.choices)
        for row in rows:
            row["added_at"] = since.get(row["id"])
            row["stage"] = stages.get(row.get("lifecycle_stage") or "", "")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "segment": segment,
            "rows": rows,
            "page": page,
            "term": term,
            "title": gettext("Members of %(name)s") % {"name": segment.name},
        }
        return TemplateResponse(request, "segments/admin/segment_members.html", context)

    def export_view(self, request: HttpRequest, segment_id: int, fmt: str):
        if not self.has_view_permission(request) or fmt not in ("csv", "xlsx"):
            raise PermissionDenied
        segment = get_object_or_404(Segment, pk=segment_id)
        purpose = "marketing" if request.GET.get("purpose") == "marketing" else ""
        return make_export_response(
            request.user, segment, fmt, purpose, request.GET.get("channel", "")[:10]
        )

    def has_tag_permission(self, request: HttpRequest) -> bool:
        """Return whether the user may tag customers (the bulk-tag page and action)."""
        return has_permission(request.user, TAG_PERMISSION)

    def tag_view(self, request: HttpRequest):
        require_permission(request.user, TAG_PERMISSION)
        form = TagCustomersForm(request.POST or None, request.FILES or None, initial=request.GET)
        if request.method == "POST" and form.is_valid():
            try:
                added, unknown = form.apply(request.user)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, gettext("Tagged %(n)s customers.") % {"n": f"{added:,}"})
                if unknown:
                    messages.warning(
                        request,
                        gettext("%(n)s ids were not found, e.g. %(ex)s")
                        % {"n": len(unknown), "ex": ", ".join(unknown[:5])},
                    )
                return HttpResponseRedirect(reverse("admin:customers_tag_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Tag customers in bulk"),
        }
        return TemplateResponse(request, "segments/admin/tag_customers.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["rule_catalogue"] = {
            **describe_catalogue(),
            "segments": [
                {"value": pk, "label": name}
                for pk, name in Segment.objects.exclude(pk=getattr(obj, "pk", None))
                .order_by("name")
                .values_list("pk", "name")[:500]
            ],
        }
        if obj is not None and obj.disabled_at is not None:
            context["disabled_reason"] = services.describe_problems(obj.disabled_reason)
        if obj is not None:
            sizes = SegmentSize.objects.filter(segment=obj).order_by("-measured_at")[:200]
            if can_view_all_customers(request.user):  # sizes count other reps' customers too
                context["size_chart"] = render_size_chart(
                    # In the business's time, like the entries and exits listed below it.
                    [(timezone.localtime(s.measured_at), s.size) for s in reversed(list(sizes))]
                )
            changes = MembershipChange.objects.filter(segment=obj)
            context["recent_changes"] = (
                scope_customers(request.user, changes, "customer")
                .select_related("customer")
                .order_by("-changed_at", "-id")[:20]
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in ("name", "description", "kind", "rules")}
        if change:
            services.update_segment(Segment.objects.get(pk=obj.pk), data, by=request.user)
        else:
            created = services.create_segment(
                data["name"],
                data["rules"],
                kind=data["kind"],
                description=data["description"],
                by=request.user,
            )
            obj.pk = obj.id = created.pk

    def delete_model(self, request, obj):
        try:
            services.delete_segment(obj, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))

    def delete_queryset(self, request, queryset):
        """Delete the selected segments one by one through the service, as delete_model does."""
        for segment in queryset:
            self.delete_model(request, segment)

    @display(description=_("status"))
    def status(self, obj: Segment) -> str:
        """Say whether the segment refreshes, or why it was disabled."""
        if obj.disabled_at is None:
            return gettext("Enabled")
        return format_html(
            '<span class="text-red-600 dark:text-red-400">{}: {}</span>',
            gettext("Disabled"),
            services.describe_problems(obj.disabled_reason),
        )

    def changelist_view(self, request, extra_context=None):
        """Tell the owner of a disabled segment, on the list, why it no longer refreshes."""
        if request.method == "GET":
            for segment in Segment.objects.filter(
                created_by_id=request.user.pk, disabled_at__isnull=False
            )[:10]:
                messages.warning(
                    request,
                    gettext("Your segment %(name)s is disabled: %(reason)s. Change its rule.")
                    % {
                        "name": segment.name,
                        "reason": services.describe_problems(segment.disabled_reason),
                    },
                )
        return super().changelist_view(request, extra_context)

    def get_deleted_objects(self, objs, request):
        """Refuse (as protected) to delete a segment another segment or tag rule names."""
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        users = services.find_rules_using(segments=list(objs))
        protected = [*protected, *(f"{u._meta.verbose_name}: {u}" for u in users)]
        return deleted, model_count, perms_needed, protected

    @action(description=_("Refresh now"), permissions=["change"])
    def refresh_selected(self, request, queryset):
        for segment in queryset:
            try:
                result = services.refresh_segment(segment, by=request.user)
            except ValidationError as exc:
                messages.error(request, f"{segment.name}: {' '.join(exc.messages)}")
                continue
            messages.info(
                request,
                gettext("%(name)s: %(size)s members (+%(entered)s / −%(left)s)")
                % {"name": segment.name, **result.__dict__},
            )

    @action(description=_("Export CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return make_export_response(request.user, queryset.first(), "csv")

    @action(description=_("Export Excel"), permissions=["view"])
    def export_xlsx(self, request, queryset):
        return make_export_response(request.user, queryset.first(), "xlsx")

    @action(description=_("Tag members"), permissions=["tag"])
    def tag_selected(self, request, queryset):
        url = reverse("admin:segments_tag_customers")
        return HttpResponseRedirect(f"{url}?segment={queryset.first().pk}")


class TagCustomersForm(forms.Form):
    tag = forms.CharField(label=_("tag"), max_length=100)
    group = forms.ModelChoiceField(TagGroup.objects.all(), required=False, label=_("tag group"))
    segment = forms.ModelChoiceField(Segment.objects.all(), required=False, label=_("segment"))
    file = forms.FileField(
        required=False,
        label=_("file of ids"),
        help_text=_("CSV or text, one id per line in the first column."),
    )
    id_system = forms.CharField(
        required=False,
        label=_("external id system"),
        help_text=_(
            "Empty: the file holds Kequn customer ids. 'external_ref': the customers' external "
            "reference. Otherwise: the system of external ids, e.g. shopify."
        ),
    )

    def clean(self):
        data = super().clean()
        if not data.get("segment") and not data.get("file"):
            raise ValidationError(_("Choose a segment or upload a file."))
        return data

    def apply(self, user) -> tuple[int, list[str]]:
        data = self.cleaned_data
        group = data["group"].name if data["group"] else None
        if not has_permission(user, "customers.add_tag") and not _tag_exists(data["tag"], group):
            raise ValidationError(
                _("tag: no tag %(name)s exists and you may not create tags; choose one that does")
                % {"name": data["tag"]}
            )
        group = data["group"].name if data["group"] else None
        tag = services.get_or_create_tag(data["tag"], group, by=user)
        if data.get("segment"):
            return services.tag_segment_members(data["segment"], tag, by=user), []
        text = data["file"].read().decode("utf-8-sig", errors="replace")
        system = data.get("id_system") or None
        ids, unknown = services.resolve_customer_ids(
            services.read_id_values(text), "" if system == "external_ref" else system, by=user
        )
        return services.tag_customer_ids(tag, ids, by=user), unknown


def _tag_exists(name: str, group: str | None) -> bool:
    """Return whether the bulk-tag form names an existing tag (in the group, if one is given)."""
    tags = Tag.objects.filter(name=name.strip())
    return (tags.filter(group__name=group) if group else tags.filter(group__isnull=True)).exists()


class TagRuleForm(forms.ModelForm):
    rules = RuleField(label=_("rules"))

    class Meta:
        model = TagRule
        fields = ["tag", "rules", "enabled"]

    def clean_rules(self):
        rules = self.cleaned_data["rules"]
        try:
            services.check_rule(rules)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        return rules


@admin.register(TagRule)
class TagRuleAdmin(ModelAdmin):
    form = TagRuleForm
    list_display = ["tag", "enabled", "member_count", "refreshed_at", "status"]
    readonly_fields = ["member_count", "refreshed_at"]
    actions = ["refresh_selected"]
    status = SegmentAdmin.status

    def save_model(self, request, obj, form, change):
        tag = form.cleaned_data["tag"]
        saved = services.save_tag_rule(
            tag.name,
            form.cleaned_data["rules"],
            tag.group.name if tag.group_id else None,
            enabled=form.cleaned_data["enabled"],
            by=request.user,
        )
        obj.pk = obj.id = saved.pk

    @action(description=_("Refresh now"), permissions=["change"])
    def refresh_selected(self, request, queryset):
        for tag_rule in queryset.select_related("tag"):
            try:
                services.refresh_tag_rule(tag_rule, by=request.user)
            except ValidationError as exc:
                messages.error(request, f"{tag_rule}: {' '.join(exc.messages)}")
        messages.info(request, gettext("Refreshed."))


@admin.register(Persona)
class PersonaAdmin(ModelAdmin):
    list_display = [
        "description_en",
        "description_zh",
        "size",
        "k",
        "silhouette",
        "run_at",
        "segment",
    ]
    readonly_fields = [f.name for f in Persona._meta.fields if f.name != "customer_ids"]
    exclude = ["customer_ids"]
    actions = ["save_as_segment"]

    def has_add_permission(self, request):
        return False

    def has_add_segment_permission(self, request) -> bool:
        """Return whether the user may create segments (saving a persona makes one)."""
        return has_permission(request.user, "segments.add_segment")

    @action(description=_("Save as segment"), permissions=["add_segment"])
    def save_as_segment(self, request, queryset):
        for persona in queryset:
            services.save_persona_as_segment(persona, by=request.user)
        messages.success(request, gettext("Saved as static segments."))


@admin.register(MembershipChange)
class MembershipChangeAdmin(CustomerScopedAdminMixin, ModelAdmin):
    list_display = ["changed_at", "segment", "customer", "change"]
    list_filter = ["change", "segment"]
    list_select_related = ["segment", "customer"]
    raw_id_fields = ["customer"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
