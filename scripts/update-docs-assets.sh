#!/usr/bin/env bash
# Refresh the Swagger UI and ReDoc files bundled in src/dartle/web/openapi/static/
# from the npm registry, at the pinned versions below (bump them here, run, commit).
#
# Only what the /docs and /redoc pages load is kept, with the packages' licence files.
# Needs node/npm and network access to the registry; writes nothing else.
set -euo pipefail

SWAGGER_UI_VERSION="5.35.0"
REDOC_VERSION="2.5.4"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/src/dartle/web/openapi/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "swagger-ui-dist@${SWAGGER_UI_VERSION}" "redoc@${REDOC_VERSION}" >/dev/null
mkdir swagger-ui redoc
tar -xzf "swagger-ui-dist-${SWAGGER_UI_VERSION}.tgz" -C swagger-ui --strip-components=1
tar -xzf "redoc-${REDOC_VERSION}.tgz" -C redoc --strip-components=1

mkdir -p "$dest"
rm -f "$dest"/*
cp swagger-ui/swagger-ui.css swagger-ui/swagger-ui-bundle.js swagger-ui/favicon-32x32.png "$dest/"
cp swagger-ui/oauth2-redirect.html swagger-ui/oauth2-redirect.js "$dest/"
cp swagger-ui/LICENSE "$dest/swagger-ui.LICENSE.txt"
cp swagger-ui/NOTICE "$dest/swagger-ui.NOTICE.txt"
cp swagger-ui/swagger-ui-bundle.js.LICENSE.txt "$dest/"
cp redoc/bundles/redoc.standalone.js redoc/bundles/redoc.standalone.js.LICENSE.txt "$dest/"
cp redoc/LICENSE "$dest/redoc.LICENSE.txt"

# The bundles point at source maps we do not ship; without the comment, browser
# developer tools do not ask for them (a 404 in every session otherwise).
sed -i -e '/^\/\/# sourceMappingURL=/d' "$dest/swagger-ui-bundle.js" "$dest/redoc.standalone.js"
sed -i -e 's|/\*# sourceMappingURL=[^*]*\*/||' "$dest/swagger-ui.css"

{
  echo "swagger-ui-dist ${SWAGGER_UI_VERSION} (Apache-2.0): https://www.npmjs.com/package/swagger-ui-dist"
  echo "redoc ${REDOC_VERSION} (MIT): https://www.npmjs.com/package/redoc"
  echo
  echo "Fetched by scripts/update-docs-assets.sh; sha256 of each file:"
  (cd "$dest" && sha256sum -- *.js *.css *.html *.png | sort -k2)
} >"$work/VERSIONS.txt"
mv "$work/VERSIONS.txt" "$dest/VERSIONS.txt"
echo "updated $dest:"
ls -l "$dest"
