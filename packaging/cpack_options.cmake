# File: packaging/cpack_options.cmake — read by cpack at packaging time (CPACK_PROJECT_CONFIG_FILE).
# A Debian package installs under /usr, and the binary and the unit have the install prefix
# compiled in: refuse a .deb from a tree configured with another prefix.
if(CPACK_GENERATOR STREQUAL "DEB" AND NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "a Debian package installs under /usr, but this tree was configured with "
          "CMAKE_INSTALL_PREFIX=${CPACK_PACKAGING_INSTALL_PREFIX}: configure it with "
          "-DCMAKE_INSTALL_PREFIX=/usr")
endif()
