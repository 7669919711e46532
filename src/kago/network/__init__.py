"""Container networking (issue 6): netns, veth, bridge, IPAM, published ports, /etc files."""
