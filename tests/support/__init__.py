"""What the tests share: helpers, not fixtures (those live in the conftest.py files).

    wait        wait_until: poll a condition with a deadline, fail naming what was waited for
    data        ROOT, need_data (the real photos in ../shared/data), face_photos
    scenes      passing_close: two people passing at a doorway, composed from the photos
    servers     mosquitto, PostgreSQL (from tools/servers.py, shared with the benchmarks), sshd, TLS files
    mqtt        Subscriber: everything a topic filter receives
    events      events made by hand: the tracer's test key and day (event_of, checked), sample_event
    feeder      Feeder: the unit's own outbox and broker link, fed with events
    unit_config configs for a unit: write_config, photos_on_demand, unit_config, config_text
    daemon      the daemon in a thread (InThread), as a process (DaemonProcess, Supervised), pending_ids
    pir         a mock PIR pin that counts its samples, to wait for gpiozero to see a change
    collector   `traceon-edge collect` as a process (Collector), stream of events, contents/wait_stored of its database
    faults      the fault scenarios' results table: record (a row), received (event ids at a Subscriber)

pyproject.toml puts tests/ (and tools/) on pytest's pythonpath, so a test module says `from support.x import y`.
"""
