# install() rules: `cmake --install BUILD [--prefix DIR]` puts the programs
# in bin/, example configurations in share/doc/berth/examples/ and the
# README in share/doc/berth/ (GNUInstallDirs decides the exact paths, so
# -DCMAKE_INSTALL_PREFIX=/usr and packagers' overrides work as usual).
# Nothing goes into sysconfdir: berthd reads a config only when --config
# names one, and a package should not overwrite an operator's file.

install(TARGETS berthd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The edge proxy, once a target of that name exists.
if(TARGET berth-edge)
  install(TARGETS berth-edge RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# Example configurations: etc/*.yml in the source tree (none yet; the
# README's Configuration section is the reference).
file(GLOB BERTH_EXAMPLE_CONFIGS ${CMAKE_SOURCE_DIR}/etc/*.yml)
if(BERTH_EXAMPLE_CONFIGS)
  install(FILES ${BERTH_EXAMPLE_CONFIGS} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
endif()

install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
