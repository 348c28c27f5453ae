"""Record logins, permission changes and changes to customers' personal data as they happen.

Connected in AuditConfig.ready(). Bulk writes (bulk_create, update(), raw SQL as used by
`kequn demo` and the importer) send no model signals; the importer records one event per job.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from kequn.security import personal_data
from kequn.security.audit import services as audit

# Timestamps that change on every save say nothing about what was changed.
IGNORED_FIELDS = {"updated_at", "created_at", "added_at", "recorded_at"}
# Flags on the user that grant or withdraw access.
USER_ACCESS_FIELDS = ("is_superuser", "is_staff", "is_active")


def get_personal_models() -> list[type]:
    """Return the models whose personal data is audited field by field (as their apps declare)."""
    return personal_data.get_audited_models()


def tracked_fields(model: type) -> list[str]:
    """Return the attribute names of the fields whose changes are recorded."""
    return [
        f.attname
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name not in IGNORED_FIELDS
    ]


def customer_id_of(instance) -> int | None:
    """Return the id of the customer a personal-data row belongs to."""
    entry = personal_data.get_entry(type(instance))
    return entry.customer_id_of(instance) if entry is not None else None


def remember_changed_fields(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """Before a save, note which tracked fields differ from the stored row."""
    instance._audit_changed = None
    if raw or audit.is_suppressed() or instance._state.adding or instance.pk is None:
        return
    names = tracked_fields(sender)
    if update_fields is not None:
        wanted = {sender._meta.get_field(n).attname for n in update_fields}
        names = [n for n in names if n in wanted]
    if not names:
        instance._audit_changed = []
        return
    stored = sender._base_manager.filter(pk=instance.pk).values(*names).first()
    if stored is None:  # saved with an explicit pk that is not there yet: an insert
        return
    instance._audit_changed = [n for n in names if stored[n] != getattr(instance, n)]


def record_personal_save(sender, instance, created=False, raw=False, **kwargs) -> None:
    """After a save of personal data, record its creation or the names of changed fields."""
    if raw or audit.is_suppressed():
        return
    changed = getattr(instance, "_audit_changed", None)
    if created or changed is None:
        audit.record_event(
            audit.CREATE, target=instance, detail={"customer": customer_id_of(instance)}
        )
    elif changed:
        audit.record_event(
            audit.CHANGE,
            target=instance,
            detail={"customer": customer_id_of(instance), "fields": sorted(changed)},
        )


def record_personal_delete(sender, instance, **kwargs) -> None:
    """After personal data is deleted, record which row it was."""
    if audit.is_suppressed():
        return
    audit.record_event(audit.DELETE, target=instance, detail={"customer": customer_id_of(instance)})


def remember_user_access(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    """Before a user is saved, note the access flags stored so far."""
    instance._audit_access = None
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(USER_ACCESS_FIELDS):
        return  # e.g. the last_login update on every login
    instance._audit_access = (
        sender._base_manager.filter(pk=instance.pk).values(*USER_ACCESS_FIELDS).first()
    )


def record_user_save(sender, instance, created=False, raw=False, **kwargs) -> None:
    """Record a new user with its flags, or a change of is_superuser/is_staff/is_active."""
    if raw:
        return
    if created:
        audit.record_event(
            audit.CREATE,
            target=instance,
            detail={name: getattr(instance, name) for name in USER_ACCESS_FIELDS},
        )
        return
    before = getattr(instance, "_audit_access", None)
    if not before:
        return
    changes = {
        name: [before[name], getattr(instance, name)]
        for name in USER_ACCESS_FIELDS
        if before[name] != getattr(instance, name)
    }
    if changes:
        audit.record_event(audit.PERMISSION_CHANGE, target=instance, detail=changes)


def record_user_delete(sender, instance, **kwargs) -> None:
    """Record that a user account was deleted."""
    audit.record_event(audit.DELETE, target=instance, detail={"username": instance.get_username()})


def describe_members(model: type, pks: set | None) -> list[str]:
    """Return readable names (group names, permission labels, usernames) for m2m members."""
    if not pks:
        return []
    if model is Permission:
        rows = Permission.objects.filter(pk__in=pks).values_list(
            "content_type__app_label", "codename"
        )
        return sorted(f"{app}.{code}" for app, code in rows)
    if model is Group:
        return sorted(Group.objects.filter(pk__in=pks).values_list("name", flat=True))
    user_model = get_user_model()
    if model is user_model:
        field = user_model.USERNAME_FIELD
        return sorted(user_model.objects.filter(pk__in=pks).values_list(field, flat=True))
    return sorted(str(pk) for pk in pks)


def make_m2m_recorder(relation: str, attname: str):
    """Return an m2m_changed receiver recording additions to and removals from one relation."""

    def record(sender, instance, action, reverse, model, pk_set, **kwargs) -> None:
        if action == "pre_clear":
            # After the clear the members are gone; note them now. The same through table is
            # reached from both sides (user.groups and group.user_set).
            name = reverse_attname(sender, instance) if reverse else attname
            manager = getattr(instance, name, None)
            instance._audit_cleared = (
                set(manager.values_list("pk", flat=True)) if manager is not None else set()
            )
            return
        if action not in ("post_add", "post_remove", "post_clear"):
            return
        pks = getattr(instance, "_audit_cleared", set()) if action == "post_clear" else pk_set
        if not pks:
            return
        audit.record_event(
            audit.PERMISSION_CHANGE,
            target=instance,
            detail={
                "relation": relation,
                "operation": "add" if action == "post_add" else "remove",
                "ids": sorted(pks),
                "members": describe_members(model, pks),
            },
        )

    return record


def reverse_attname(through: type, instance) -> str:
    """Return the manager name on instance for the reverse side of an auth m2m through table."""
    user_model = get_user_model()
    if isinstance(instance, Group):
        return "user_set"
    if isinstance(instance, Permission):
        return "group_set" if through is Group.permissions.through else "user_set"
    if isinstance(instance, user_model):
        return "groups"
    return ""


def record_login(sender, request, user, **kwargs) -> None:
    """Record a successful login."""
    audit.record_event(audit.LOGIN, actor=user, target=user, request=request)


def record_logout(sender, request, user, **kwargs) -> None:
    """Record a logout (user is None when the session had already expired)."""
    if user is not None:
        audit.record_event(audit.LOGOUT, actor=user, target=user, request=request)


def record_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Record a failed login with the user name that was tried (never the password)."""
    user_model = get_user_model()
    attempted = str(credentials.get(user_model.USERNAME_FIELD) or credentials.get("username") or "")
    known = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: attempted}).first()
    audit.record_event(
        audit.LOGIN_FAILED,
        target_type=user_model._meta.label_lower if known else "",
        target_id=str(known.pk) if known else "",
        detail={"username": attempted[:150], "known_user": known is not None},
        request=request,
    )


def connect() -> None:
    """Connect every receiver (called once from AuditConfig.ready)."""
    user_model = get_user_model()
    for model in get_personal_models():
        uid = f"audit-{model._meta.label_lower}"
        pre_save.connect(remember_changed_fields, sender=model, dispatch_uid=f"{uid}-pre")
        post_save.connect(record_personal_save, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(record_personal_delete, sender=model, dispatch_uid=f"{uid}-delete")
    pre_save.connect(remember_user_access, sender=user_model, dispatch_uid="audit-user-pre")
    post_save.connect(record_user_save, sender=user_model, dispatch_uid="audit-user-save")
    post_delete.connect(record_user_delete, sender=user_model, dispatch_uid="audit-user-delete")
    relations = [
        (user_model.groups.through, "groups", "groups"),
        (user_model.user_permissions.through, "user_permissions", "user_permissions"),
        (Group.permissions.through, "group_permissions", "permissions"),
    ]
    for through, relation, attname in relations:
        m2m_changed.connect(
            make_m2m_recorder(relation, attname),
            sender=through,
            weak=False,  # the receiver is a closure: nothing else keeps it alive
            dispatch_uid=f"audit-{relation}",
        )
    user_logged_in.connect(record_login, dispatch_uid="audit-login")
    user_logged_out.connect(record_logout, dispatch_uid="audit-logout")
    user_login_failed.connect(record_login_failed, dispatch_uid="audit-login-failed")
