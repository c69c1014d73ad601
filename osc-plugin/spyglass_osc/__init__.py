"""python-openstackclient plugin for Spyglass's sharing-safety extensions of the Images API.

Installed with Spyglass; `openstack image usage|copy|restore|events|invitations` then talk to the
extension endpoints (README "Making sharing safe") through the cloud's image endpoint.
"""
