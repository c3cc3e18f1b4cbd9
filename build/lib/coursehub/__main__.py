from coursehub.cli import main

raise SystemExit(main())
