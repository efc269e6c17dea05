from critspec.cli import main

raise SystemExit(main())
