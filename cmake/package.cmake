# The Debian package: `cpack -G DEB` in a build folder whose kinfra target is built writes
# kinfra_<version>_<arch>.deb there (docs/operations.md, "Install the Debian package").
# Included by the top-level CMakeLists.txt after its install rules; tests/packaging/check_deb.py
# (Packaging.DebianPackage) builds the package and checks it.
#
# What goes in: the `runtime` component (/usr/bin/kinfra, /usr/share/kinfra/routes.yaml and
# demo/) and the `deb` component below, which only the package installs (EXCLUDE_FROM_ALL: a plain
# `cmake --install` never does):
#   /lib/systemd/system/kinfra.service  a real unit: ExecStart=/usr/bin/kinfra run /etc/kinfra/routes.yaml
#   /etc/kinfra/routes.yaml             dist/deb/routes.yaml, a conffile: the default routes.yaml
#                                       with its demo services run from /usr/share/kinfra
# and the maintainer scripts of dist/deb/ (postinst creates the kinfra user; the service is not
# enabled or started by installing the package). The example unit (component systemd-example) and
# the embedding package (development) stay out.

# dist/deb/routes.yaml names /usr/share/kinfra and the unit /usr/bin/kinfra: the package's prefix.
set(KINFRA_PACKAGE_PREFIX /usr)

# A unit in /lib/systemd/system, where Debian 12's debhelper puts units (systemd and
# deb-systemd-helper read /usr/lib/systemd/system too). Configured now, with the package's paths.
function(kinfra_configure_package_unit)
  set(KINFRA_UNIT_SETUP [=[
# Installed by the kinfra Debian package, which also created the kinfra user and the
# configuration, /etc/kinfra/routes.yaml. Installing the package does not enable the service:
#   kinfra check /etc/kinfra/routes.yaml          # after editing it
#   sudo systemctl enable --now kinfra
# Change this unit with `sudo systemctl edit kinfra` (a drop-in that upgrades keep), not here.]=])
  string(STRIP "${KINFRA_UNIT_SETUP}" KINFRA_UNIT_SETUP)
  set(CMAKE_INSTALL_FULL_BINDIR ${KINFRA_PACKAGE_PREFIX}/bin)  # in this function only
  configure_file(dist/kinfra.service.in ${CMAKE_BINARY_DIR}/dist/deb/kinfra.service @ONLY)
endfunction()
kinfra_configure_package_unit()
install(FILES ${CMAKE_BINARY_DIR}/dist/deb/kinfra.service DESTINATION /lib/systemd/system
        COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES dist/deb/routes.yaml DESTINATION /etc/kinfra COMPONENT deb EXCLUDE_FROM_ALL)

set(KINFRA_PACKAGE_MAINTAINER "kinfra maintainers <maintainers@kinfra.example>"
    CACHE STRING "The Maintainer field of the Debian package (cpack -G DEB)")

set(CPACK_PACKAGE_NAME kinfra)
set(CPACK_PACKAGE_VENDOR kinfra)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${KINFRA_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "reverse proxy and process supervisor with fallback pages")
set(CPACK_PACKAGE_DESCRIPTION [=[
kinfra is one program in front of your services: a reverse proxy, a process
supervisor, fallback pages and a live dashboard. It starts the services
described in /etc/kinfra/routes.yaml, routes each request to the one that
should answer, and while a service starts, crashes or is in maintenance,
visitors get a loading, 503 or maintenance page instead of a connection error.
.
The package installs a systemd unit (not enabled by default) that runs kinfra
as the kinfra system user; the default configuration runs two small demo
services that need python3.]=])
# Only the runtime and the package's own files, in one package.
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};kinfra;runtime;/" "${CMAKE_BINARY_DIR};kinfra;deb;/")
set(CPACK_PACKAGING_INSTALL_PREFIX ${KINFRA_PACKAGE_PREFIX})
# /etc/kinfra and /lib/systemd/system are absolute destinations: with DESTDIR, cpack stages them in
# its own folder like the rest (installed with the prefix /usr), never in the real /etc or /lib.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX ${KINFRA_PACKAGE_PREFIX})
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # kinfra_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)  # 0755 scripts, 0644 conffiles
# Depends: adduser (postinst) and, from dpkg-shlibdeps, the package of every library kinfra links.
set(CPACK_DEBIAN_PACKAGE_DEPENDS adduser)
find_program(KINFRA_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(KINFRA_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  message(STATUS "dpkg-shlibdeps not found (Debian package dpkg-dev): a Debian package built here "
                 "would not depend on the libraries kinfra links")
endif()
# python3 runs the demo services of the default routes.yaml; ca-certificates verifies https://
# services. Neither is needed for kinfra itself.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3, ca-certificates")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/dist/deb/conffiles
    ${CMAKE_CURRENT_SOURCE_DIR}/dist/deb/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/dist/deb/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/dist/deb/postrm)

include(CPack)
