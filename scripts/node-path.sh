# Sourced, from the clone's root, after scripts/setup.sh: puts the Node that
# setup.sh installed into .lifeboat/node (when the machine's own was older
# than package.json's engines) first on PATH, so that everything started from
# here on (npm, tsc, eslint, vitest and every bin/lifeboat the tests start)
# runs on it. The npm scripts in package.json do this; in your own shell:
#   . scripts/node-path.sh
# Changes nothing where the machine's node was new enough (no .lifeboat/node).
if [ -x .lifeboat/node/bin/node ]; then
  case ":$PATH:" in
    *":$PWD/.lifeboat/node/bin:"*) ;;
    *) PATH="$PWD/.lifeboat/node/bin:$PATH" && export PATH ;;
  esac
fi
