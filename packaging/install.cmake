# `make install` / `cmake --install`: the four programs, the console, the
# man pages, the systemd units, users (sysusers.d) and directories
# (tmpfiles.d), and commented example configurations. CMAKE_INSTALL_PREFIX
# (make install PREFIX=) and DESTDIR apply to every path.
include(GNUInstallDirs)

# Where the units, sysusers.d and tmpfiles.d files go, under the prefix
# unless absolute. systemd reads them under /usr/lib and /usr/local/lib;
# Debian 12's packages keep units in /lib/systemd/system (debian/rules
# sets WARD_UNITDIR).
set(WARD_UNITDIR lib/systemd/system CACHE STRING
  "directory the systemd units are installed into")
set(WARD_SYSUSERSDIR lib/sysusers.d CACHE STRING
  "directory the sysusers.d files are installed into")
set(WARD_TMPFILESDIR lib/tmpfiles.d CACHE STRING
  "directory the tmpfiles.d files are installed into")
# The configuration: /etc/ward under /usr, PREFIX/etc/ward elsewhere
# (GNUInstallDirs' rule; CMAKE_INSTALL_SYSCONFDIR=/etc overrides it).
set(WARD_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/ward)
set(WARD_SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})

install(TARGETS wardd ward-agent ward-sps DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS ward DESTINATION ${CMAKE_INSTALL_BINDIR})
# wardd finds the console at share/ward/console beside its program's
# directory (sbin/../share), as in the build tree.
install(DIRECTORY web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/ward/console)
install(FILES man/ward.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/wardd.8 man/ward-agent.8 man/ward-sps.8
  DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

foreach(daemon wardd ward-agent ward-sps)
  # The units with the programs' and configurations' installed paths.
  configure_file(packaging/${daemon}.service.in
    ${CMAKE_BINARY_DIR}/packaging/${daemon}.service @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/packaging/${daemon}.service DESTINATION ${WARD_UNITDIR})
  install(FILES packaging/${daemon}.tmpfiles DESTINATION ${WARD_TMPFILESDIR}
    RENAME ${daemon}.conf)
  # The example configuration, from the program's own option table.
  set(example ${CMAKE_BINARY_DIR}/packaging/${daemon}.ini)
  add_custom_command(OUTPUT ${example}
    COMMAND ${CMAKE_COMMAND} -DPROGRAM=$<TARGET_FILE:${daemon}> -DNAME=${daemon}
      -DCONF=${WARD_CONFDIR}/${daemon}.ini -DOUT=${example}
      -P ${CMAKE_SOURCE_DIR}/packaging/example-config.cmake
    DEPENDS ${daemon} ${CMAKE_SOURCE_DIR}/packaging/example-config.cmake
    COMMENT "Writing the example ${daemon}.ini")
  list(APPEND WARD_EXAMPLES ${example})
  install(FILES ${example} DESTINATION ${WARD_CONFDIR})
endforeach()
add_custom_target(example-configs ALL DEPENDS ${WARD_EXAMPLES})
install(FILES packaging/ward.sysusers DESTINATION ${WARD_SYSUSERSDIR} RENAME ward.conf)
install(FILES packaging/ward-sps.sysusers DESTINATION ${WARD_SYSUSERSDIR}
  RENAME ward-sps.conf)
install(FILES packaging/ward-agent.sysusers DESTINATION ${WARD_SYSUSERSDIR}
  RENAME ward-agent.conf)
