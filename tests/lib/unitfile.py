"""The [Service] section of a systemd unit file, as the packaging tests read it."""


def service_section(path):
    """Each key of the unit's [Service] section with its values in order."""
    values, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                values.setdefault(key, []).append(value)
    return values
