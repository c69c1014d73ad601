"""The dashboard at /dashboard/: the sharing inbox, usage and warnings, for people in a browser.

Server-rendered pages (Jinja2) with a little JavaScript of its own (upload progress, confirmations);
no build step, nothing from a CDN. See spyglass.api.dashboard.session for how a user is known."""

from __future__ import annotations

from starlette.routing import Route

from spyglass.api.dashboard import pages
from spyglass.api.dashboard.pages import logged_in

routes = [
    Route("/dashboard", pages.home, methods=["GET"]),
    Route("/dashboard/", pages.home, methods=["GET"]),
    Route("/dashboard/login", pages.login_form, methods=["GET"]),
    Route("/dashboard/login", pages.login, methods=["POST"]),
    Route("/dashboard/logout", logged_in(pages.logout), methods=["POST"]),
    Route("/dashboard/project", logged_in(pages.switch_project), methods=["POST"]),
    Route("/dashboard/static/{name}", pages.static, methods=["GET"]),
    Route("/dashboard/images", logged_in(pages.images_page), methods=["GET"]),
    Route("/dashboard/images", logged_in(pages.create), methods=["POST"]),
    Route("/dashboard/images/{image_id}", logged_in(pages.image_page), methods=["GET"]),
    Route("/dashboard/images/{image_id}/delete", logged_in(pages.delete), methods=["POST"]),
    Route("/dashboard/images/{image_id}/file", logged_in(pages.download), methods=["GET"]),
    Route("/dashboard/images/{image_id}/file", logged_in(pages.upload), methods=["PUT"]),
    Route("/dashboard/images/{image_id}/members", logged_in(pages.add_member), methods=["POST"]),
    Route(
        "/dashboard/images/{image_id}/members/{member_id}/remove",
        logged_in(pages.remove_member),
        methods=["POST"],
    ),
    Route("/dashboard/images/{image_id}/copy", logged_in(pages.copy), methods=["POST"]),
    Route("/dashboard/images/{image_id}/restore", logged_in(pages.restore), methods=["POST"]),
    Route("/dashboard/recycle-bin", logged_in(pages.bin_page), methods=["GET"]),
    Route("/dashboard/webhooks", logged_in(pages.webhooks_page), methods=["GET"]),
    Route("/dashboard/webhooks", logged_in(pages.add_webhook), methods=["POST"]),
    Route("/dashboard/webhooks/{webhook_id}/delete", logged_in(pages.delete_webhook), methods=["POST"]),
    Route("/dashboard/invitations", logged_in(pages.invitations_page), methods=["GET"]),
    Route("/dashboard/invitations/{image_id}/{answer}", logged_in(pages.answer), methods=["POST"]),
    Route("/dashboard/{rest:path}", logged_in(pages.not_found), methods=["GET"]),
]
