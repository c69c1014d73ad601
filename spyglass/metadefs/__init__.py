"""Metadata definitions (`/v2/metadefs`): namespaces of property descriptions, their objects,
properties and tags, and the resource types (OS::Glance::Image, OS::Nova::Flavor, ...) they apply
to, which dashboards use to offer property editors. Glance 33's API, rules and messages."""
